/**
 * A small self-contained HTML page: a title, tables of figures and settings, and pictures (files
 * next to the page). Every piece of text is escaped: nothing from data or files is interpreted.
 */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface ReportSection {
  readonly heading: string;
  readonly text?: string;
  /** Rows of a two-column table. */
  readonly table?: Readonly<Record<string, unknown>>;
  /** Image files relative to the page. */
  readonly images?: readonly { readonly src: string; readonly caption: string }[];
}

function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export function renderReport(title: string, sections: readonly ReportSection[]): string {
  const body = sections.map((s) => {
    const parts = [`<h2>${escapeHtml(s.heading)}</h2>`];
    if (s.text) parts.push(`<p>${escapeHtml(s.text)}</p>`);
    if (s.table) {
      const rows = Object.entries(s.table).map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(formatValue(v))}</td></tr>`);
      parts.push(`<table>${rows.join('')}</table>`);
    }
    for (const img of s.images ?? []) {
      parts.push(`<figure><img src="${escapeHtml(img.src)}" alt="${escapeHtml(img.caption)}"><figcaption>${escapeHtml(img.caption)}</figcaption></figure>`);
    }
    return `<section>${parts.join('\n')}</section>`;
  });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .2rem .8rem; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
th { font-weight: 600; }
img { image-rendering: pixelated; max-width: 100%; border: 1px solid #ccc; }
figure { margin: 1rem 0; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body.join('\n')}
</body>
</html>
`;
}
