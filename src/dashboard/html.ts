/**
 * The page shell of the dashboard: one stylesheet and the small script of the overview, inlined in
 * every page so that each file opens on its own from disk (file://), with no server, no network
 * and nothing fetched. Every piece of text from data goes through escapeHtml before it gets here.
 */
import { escapeHtml } from '../viz/report.js';

const STYLE = `
:root { --fg: #1d232b; --muted: #5d6775; --line: #e2e6eb; --bg: #f5f6f8; --card: #fff; --accent: #d9730d; --bar: #3d7bc4; --head: #1f2a37; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: #1f5fae; text-decoration: none; } a:hover { text-decoration: underline; }
header.top { background: var(--head); color: #fff; padding: 14px 28px 12px; }
header.top h1 { margin: 0; font-size: 21px; font-weight: 600; letter-spacing: .01em; }
header.top .sub { color: #b9c3d0; font-size: 13px; margin-top: 2px; }
header.top nav { font-size: 13px; margin-bottom: 6px; } header.top nav a { color: #cfe0f5; margin-right: 14px; }
main { max-width: 1200px; margin: 0 auto; padding: 18px 28px 48px; }
h2 { font-size: 16px; margin: 0 0 10px; font-weight: 600; }
h3 { font-size: 13.5px; margin: 14px 0 8px; font-weight: 600; color: #2f3a48; }
.muted { color: var(--muted); }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px 16px; margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 9px 12px; }
.card .k { color: var(--muted); font-size: 12px; } .card .v { font-size: 19px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .n { color: var(--muted); font-size: 11px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; }
.grid2 { margin-bottom: 16px; } .grid2 > .panel { margin: 0; }
figure { margin: 0; } figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg.chart .bar { fill: var(--bar); } svg.chart .bar:hover { fill: var(--accent); }
svg.chart .grid { stroke: #edf0f3; } svg.chart .axis { stroke: #9aa4b1; }
svg.chart .tick { font-size: 10.5px; fill: #5d6775; } svg.chart .label { font-size: 11.5px; fill: #364150; }
svg.chart .empty { font-size: 13px; fill: #9aa4b1; }
img.px { image-rendering: pixelated; image-rendering: crisp-edges; display: block; }
.toolbar { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; flex-wrap: wrap; }
.toolbar button { font: inherit; font-size: 13px; padding: 4px 11px; border: 1px solid #c9d0d9; background: #fff; border-radius: 999px; cursor: pointer; color: var(--fg); }
.toolbar button.on { background: var(--head); border-color: var(--head); color: #fff; }
table.features { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.features th { text-align: right; font-size: 12px; color: var(--muted); font-weight: 600; padding: 6px 10px; border-bottom: 2px solid var(--line); position: sticky; top: 0; background: var(--card); }
table.features td { text-align: right; padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
table.features th.l, table.features td.l { text-align: left; }
table.features tr.dead td { color: #a3abb6; }
table.features tbody tr:hover { background: #f3f7fc; }
td .thumb { width: 36px; height: 36px; border: 1px solid var(--line); }
.meter { display: inline-block; width: 70px; height: 6px; background: #edf0f3; border-radius: 3px; vertical-align: middle; margin-left: 8px; overflow: hidden; }
.meter > i { display: block; height: 100%; background: var(--bar); }
td.preview { max-width: 420px; overflow: hidden; text-overflow: ellipsis; white-space: pre; font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
td.preview mark { background: rgba(255, 140, 0, .75); border-radius: 2px; color: inherit; }
.examples.images { display: flex; flex-wrap: wrap; gap: 12px; }
.ex { background: #fff; }
.patch { position: relative; width: 120px; height: 120px; }
.patch img { width: 120px; height: 120px; border-radius: 4px; }
.patch i, .locator i { position: absolute; outline: 2px solid var(--accent); }
.examples.images .ex figcaption { width: 120px; }
.examples.images .ex figcaption span { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.examples.images .ex .val { font-weight: 600; color: var(--fg); font-variant-numeric: tabular-nums; }
.examples.tokens .ex, .examples.rows .ex { display: flex; gap: 12px; align-items: baseline; padding: 3px 0; border-bottom: 1px solid #f0f2f5; }
.examples.tokens .val, .examples.rows .val { min-width: 56px; text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
.ctx { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; }
.logits { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
table.logit { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.logit td { padding: 2px 8px; border-bottom: 1px solid #f0f2f5; } table.logit td.v { text-align: right; width: 70px; }
table.logit td.t { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 12.5px; white-space: pre; }
table.logit.pos td.t span { background: rgba(61, 123, 196, .16); } table.logit.neg td.t span { background: rgba(196, 61, 61, .16); }
.tok { border-radius: 2px; padding: 1px 0; } .tok.hl { outline: 2px solid #b3261e; outline-offset: -1px; }
.locators { display: flex; flex-wrap: wrap; gap: 14px; }
.locator { position: relative; display: inline-block; line-height: 0; }
.locator img { display: block; max-width: 100%; height: auto; border-radius: 4px; }
.locator i { outline: none; border: 2px solid var(--accent); box-shadow: 0 0 0 1px rgba(0, 0, 0, .55); min-width: 10px; min-height: 10px; transform: translate(-50%, -50%); }
.filters { display: flex; gap: 16px; }
.filters img { width: 120px; height: 120px; border: 1px solid var(--line); border-radius: 4px; }
.band h3 .muted { font-weight: 400; }
`;

/** Sorts the overview's feature list by the data-* value a button names (descending, index ascending). */
const LIST_SCRIPT = `
(function () {
  var table = document.getElementById('features');
  if (!table) return;
  var tbody = table.tBodies[0];
  var buttons = Array.prototype.slice.call(document.querySelectorAll('button[data-sort]'));
  function sortBy(key) {
    var desc = key !== 'index';
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var d = Number(a.dataset[key]) - Number(b.dataset[key]);
      return (desc ? -d : d) || Number(a.dataset.index) - Number(b.dataset.index);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    tbody.appendChild(frag);
    buttons.forEach(function (b) {
      var on = b.dataset.sort === key;
      b.classList.toggle('on', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    });
    table.dataset.sorted = key;
  }
  buttons.forEach(function (b) { b.addEventListener('click', function () { sortBy(b.dataset.sort); }); });
})();
`;

export interface PageOptions {
  /** The header's title and the line under it (plain text; escaped here). */
  readonly heading: string;
  readonly subtitle: string;
  /** Links above the heading: [href, text] (plain text; escaped here). */
  readonly nav?: readonly (readonly [string, string])[];
  /** Include the feature list's sorting script. */
  readonly listScript?: boolean;
}

/** A whole page: `body` is HTML built from escaped pieces. */
export function page(title: string, body: string, o: PageOptions): string {
  const nav = o.nav?.length ? `<nav>${o.nav.map(([href, text]) => `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`).join('')}</nav>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header class="top">${nav}<h1>${escapeHtml(o.heading)}</h1><div class="sub">${escapeHtml(o.subtitle)}</div></header>
<main>
${body}
</main>
${o.listScript ? `<script>${LIST_SCRIPT}</script>` : ''}
</body>
</html>
`;
}

/** A metric card: a name, a value and an optional note (plain text, escaped here). */
export function card(name: string, value: string, note = ''): string {
  return `<div class="card"><div class="k">${escapeHtml(name)}</div><div class="v">${escapeHtml(value)}</div>${note ? `<div class="n">${escapeHtml(note)}</div>` : ''}</div>`;
}
