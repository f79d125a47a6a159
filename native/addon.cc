// The Node-API boundary: checks every argument (types, lengths against rows * cols, disjoint
// buffers, finite scalars), throws a JS TypeError/RangeError naming the kernel and the argument,
// then runs the kernel in place on the JS buffers (no copies). Surface: src/engine/binding.ts.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "dequant.h"
#include "kernels.h"
#include "pool.h"

namespace {

// Bump with every change to the surface; src/engine/binding.ts checks it.
constexpr int kAbi = 3;
constexpr int kMaxThreads = 1024;
constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

template <class T>
struct Buffer {
  T* data;
  std::size_t length;
  const char* name;
};

// buf: [rows, cols]
struct Matrix {
  Buffer<float> buf;
  std::size_t rows;
  std::size_t cols;
};

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "an Int8Array";
    case napi_uint8_array: return "a Uint8Array";
    case napi_uint8_clamped_array: return "a Uint8ClampedArray";
    case napi_int16_array: return "an Int16Array";
    case napi_uint16_array: return "a Uint16Array";
    case napi_int32_array: return "an Int32Array";
    case napi_uint32_array: return "a Uint32Array";
    case napi_float32_array: return "a Float32Array";
    case napi_float64_array: return "a Float64Array";
    default: return "a typed array";
  }
}

std::string describe(const Napi::Value& v) {
  if (v.IsTypedArray()) return typed_array_name(v.As<Napi::TypedArray>().TypedArrayType());
  if (v.IsArray()) return "an Array";
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    default: return "an object";
  }
}

// A CSR code, checked: row_ptr [rows + 1], row_ptr[0] = 0, nondecreasing, row_ptr[rows] = idx.length = nnz.
struct Code {
  Buffer<std::int32_t> row_ptr;
  Buffer<std::int32_t> idx;
  std::size_t rows;
  std::size_t nnz;

  sae::Csr csr() const { return {row_ptr.data, idx.data, rows}; }
};

// Reads and checks the arguments of one call to `kernel`; every failure throws a JS error.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* kernel) : info_(info), kernel_(kernel) {}

  [[noreturn]] void type_error(const std::string& what) const {
    throw Napi::TypeError::New(info_.Env(), std::string(kernel_) + ": " + what);
  }
  [[noreturn]] void range_error(const std::string& what) const {
    throw Napi::RangeError::New(info_.Env(), std::string(kernel_) + ": " + what);
  }

  Buffer<float> float32(std::size_t i, const char* name) const {
    const Napi::TypedArray a = typed(i, name, napi_float32_array, "a Float32Array");
    return {a.As<Napi::Float32Array>().Data(), a.ElementLength(), name};
  }

  Buffer<std::uint8_t> uint8(std::size_t i, const char* name) const {
    const Napi::TypedArray a = typed(i, name, napi_uint8_array, "a Uint8Array");
    return {a.As<Napi::Uint8Array>().Data(), a.ElementLength(), name};
  }

  Buffer<std::int32_t> int32(std::size_t i, const char* name) const {
    const Napi::TypedArray a = typed(i, name, napi_int32_array, "an Int32Array");
    return {a.As<Napi::Int32Array>().Data(), a.ElementLength(), name};
  }

  bool boolean(std::size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsBoolean()) type_error(std::string(name) + " must be a boolean, got " + describe(v));
    return v.As<Napi::Boolean>().Value();
  }

  // The CSR code at arguments i (rowPtr), i + 1 (idx), i + 2 (rows); O(rows) checks. Its latents
  // are checked apart (expect_latents), once their bound is known.
  Code code(std::size_t i) const {
    const auto row_ptr = int32(i, "rowPtr");
    const auto idx = int32(i + 1, "idx");
    const std::size_t rows = dim(i + 2, "rows");
    expect_length(row_ptr, rows + 1, "rows + 1");
    const std::int32_t* p = row_ptr.data;
    if (p[0] != 0) range_error("rowPtr[0] must be 0, got " + std::to_string(p[0]));
    for (std::size_t r = 0; r < rows; ++r) {
      if (p[r + 1] < p[r]) {
        range_error("rowPtr must be nondecreasing, got rowPtr[" + std::to_string(r + 1) + "] = " + std::to_string(p[r + 1]) +
                    " < rowPtr[" + std::to_string(r) + "] = " + std::to_string(p[r]));
      }
    }
    const auto nnz = static_cast<std::size_t>(p[rows]);
    expect_length(idx, nnz, "nnz = rowPtr[rows]");
    return {row_ptr, idx, rows, nnz};
  }

  // Every latent of c in [0, d_sae) (`bound` says where d_sae comes from).
  void expect_latents(const Code& c, std::size_t d_sae, const std::string& bound) const {
    const std::int32_t* idx = c.idx.data;
    d_sae = std::min<std::size_t>(d_sae, std::size_t{1} << 31);  // an int32 is below 2^31 anyway
    // Branch-free scan first (the common case: all fine), then the first offender for the message.
    std::uint32_t worst = 0;
    for (std::size_t e = 0; e < c.nnz; ++e) worst = std::max(worst, static_cast<std::uint32_t>(idx[e]));
    if (static_cast<std::size_t>(worst) < d_sae) return;
    for (std::size_t e = 0; e < c.nnz; ++e) {
      if (idx[e] < 0 || static_cast<std::size_t>(idx[e]) >= d_sae) {
        range_error("idx[" + std::to_string(e) + "] = " + std::to_string(idx[e]) + " is out of [0, dSae) with " + bound);
      }
    }
  }

  // out: [n], written in place of `in`: the same buffer (out = in) or one apart from it.
  void expect_same_or_disjoint(const Buffer<float>& out, const Buffer<float>& in) const {
    if (out.data == in.data && out.length == in.length) return;
    expect_disjoint(out, in);
  }

  // A finite number.
  double number(std::size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsNumber()) type_error(std::string(name) + " must be a number, got " + describe(v));
    const double x = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(x)) range_error(std::string(name) + " must be finite, got " + fmt(x));
    return x;
  }

  // A finite number >= 0.
  double non_negative(std::size_t i, const char* name) const {
    const double x = number(i, name);
    if (x < 0) range_error(std::string(name) + " must be >= 0, got " + fmt(x));
    return x;
  }

  // A finite number in [0, 1).
  double unit(std::size_t i, const char* name) const {
    const double x = number(i, name);
    if (x < 0 || x >= 1) range_error(std::string(name) + " must be in [0, 1), got " + fmt(x));
    return x;
  }

  // An integer in [lo, hi].
  double integer(std::size_t i, const char* name, double lo, double hi) const {
    const double x = number(i, name);
    if (x != std::floor(x) || x < lo || x > hi) {
      range_error(std::string(name) + " must be an integer in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(x));
    }
    return x;
  }

  // A matrix dimension: an integer >= 0.
  std::size_t dim(std::size_t i, const char* name) const {
    return static_cast<std::size_t>(integer(i, name, 0, static_cast<double>(std::numeric_limits<std::uint32_t>::max())));
  }

  template <class T>
  void expect_length(const Buffer<T>& b, std::size_t expected, const std::string& formula) const {
    if (b.length != expected) {
      range_error(std::string(b.name) + " has " + std::to_string(b.length) + " elements, expected " + formula + " = " +
                  std::to_string(expected));
    }
  }

  // b: [rows, cols].
  template <class T>
  void expect_matrix(const Buffer<T>& b, std::size_t rows, std::size_t cols) const {
    expect_length(b, rows * cols, "rows * cols = " + std::to_string(rows) + " * " + std::to_string(cols));
  }

  // The matrix at argument i with its rows and columns at i + 1, i + 2: [rows, cols].
  Matrix matrix(std::size_t i, const char* name) const {
    const Matrix m{float32(i, name), dim(i + 1, "rows"), dim(i + 2, "cols")};
    expect_matrix(m.buf, m.rows, m.cols);
    return m;
  }

  // out: [m.rows], apart from m.
  template <class T>
  Buffer<T> per_row(const Buffer<T>& out, const Matrix& m) const {
    expect_length(out, m.rows, "rows");
    expect_disjoint(m.buf, out);
    return out;
  }

  // out apart from every one of `ins`.
  template <class T, class... In>
  void expect_apart(const Buffer<T>& out, const In&... ins) const {
    (expect_disjoint(out, ins), ...);
  }

  template <class A, class B>
  void expect_disjoint(const Buffer<A>& a, const Buffer<B>& b) const {
    const auto* a0 = reinterpret_cast<const char*>(a.data);
    const auto* b0 = reinterpret_cast<const char*>(b.data);
    const bool overlap = a.length > 0 && b.length > 0 && a0 < b0 + b.length * sizeof(B) && b0 < a0 + a.length * sizeof(A);
    if (overlap) range_error(std::string(a.name) + " and " + b.name + " share memory; pass separate buffers");
  }

 private:
  // x as JavaScript prints it.
  std::string fmt(double x) const { return Napi::Number::New(info_.Env(), x).ToString().Utf8Value(); }

  Napi::TypedArray typed(std::size_t i, const char* name, napi_typedarray_type type, const char* expected) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
      type_error(std::string(name) + " must be " + expected + ", got " + describe(v));
    }
    return v.As<Napi::TypedArray>();
  }

  const Napi::CallbackInfo& info_;
  const char* kernel_;
};

// adam(param, grad, m, v, lr, beta1, beta2, eps, step): void
void Adam(const Napi::CallbackInfo& info) {
  const Args a(info, "adam");
  const auto param = a.float32(0, "param");
  const auto grad = a.float32(1, "grad");
  const auto m = a.float32(2, "m");
  const auto v = a.float32(3, "v");
  const sae::AdamHyper h{a.non_negative(4, "lr"), a.unit(5, "beta1"), a.unit(6, "beta2"), a.non_negative(7, "eps")};
  const double step = a.integer(8, "step", 1, kMaxSafeInteger);
  a.expect_length(grad, param.length, "param.length");
  a.expect_length(m, param.length, "param.length");
  a.expect_length(v, param.length, "param.length");
  a.expect_disjoint(param, grad);
  a.expect_disjoint(param, m);
  a.expect_disjoint(param, v);
  a.expect_disjoint(grad, m);
  a.expect_disjoint(grad, v);
  a.expect_disjoint(m, v);
  sae::adam(param.data, grad.data, m.data, v.data, param.length, h, step);
}

// rowNorms(w, rows, cols, out): void
void RowNorms(const Napi::CallbackInfo& info) {
  const Args a(info, "rowNorms");
  const Matrix w = a.matrix(0, "w");
  const auto out = a.per_row(a.float32(3, "out"), w);
  sae::row_norms(w.buf.data, w.rows, w.cols, out.data);
}

// normalizeRows(w, rows, cols, target): void
void NormalizeRows(const Napi::CallbackInfo& info) {
  const Args a(info, "normalizeRows");
  const Matrix w = a.matrix(0, "w");
  sae::normalize_rows(w.buf.data, w.rows, w.cols, a.number(3, "target"));
}

// removeParallelComponent(grad, w, rows, cols): void
void RemoveParallelComponent(const Napi::CallbackInfo& info) {
  const Args a(info, "removeParallelComponent");
  const auto grad = a.float32(0, "grad");
  const auto w = a.float32(1, "w");
  const std::size_t rows = a.dim(2, "rows");
  const std::size_t cols = a.dim(3, "cols");
  a.expect_matrix(grad, rows, cols);
  a.expect_matrix(w, rows, cols);
  a.expect_disjoint(grad, w);
  sae::remove_parallel_component(grad.data, w.data, rows, cols);
}

// scale(x, s): void
void Scale(const Napi::CallbackInfo& info) {
  const Args a(info, "scale");
  const auto x = a.float32(0, "x");
  const double s = a.number(1, "s");
  sae::scale(x.data, x.length, s);
}

// nonFiniteRows(x, rows, cols, out): number
Napi::Value NonFiniteRows(const Napi::CallbackInfo& info) {
  const Args a(info, "nonFiniteRows");
  const Matrix x = a.matrix(0, "x");
  const auto out = a.per_row(a.uint8(3, "out"), x);
  const std::size_t count = sae::non_finite_rows(x.buf.data, x.rows, x.cols, out.data);
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

// subtract(a, b, out): number (sum of out^2); out may be a or b.
Napi::Value Subtract(const Napi::CallbackInfo& info) {
  const Args a(info, "subtract");
  const auto x = a.float32(0, "a");
  const auto y = a.float32(1, "b");
  const auto out = a.float32(2, "out");
  a.expect_length(y, x.length, "a.length");
  a.expect_length(out, x.length, "a.length");
  a.expect_same_or_disjoint(out, x);
  a.expect_same_or_disjoint(out, y);
  return Napi::Number::New(info.Env(), sae::subtract(x.data, y.data, out.data, x.length));
}

// centeredSumSquares(x, rows, cols): number
Napi::Value CenteredSumSquares(const Napi::CallbackInfo& info) {
  const Args a(info, "centeredSumSquares");
  const Matrix x = a.matrix(0, "x");
  return Napi::Number::New(info.Env(), sae::centered_sum_squares(x.buf.data, x.rows, x.cols));
}

// columnSums(x, rows, cols, out, accumulate): void
void ColumnSums(const Napi::CallbackInfo& info) {
  const Args a(info, "columnSums");
  const Matrix x = a.matrix(0, "x");
  const auto out = a.float32(3, "out");
  const bool accumulate = a.boolean(4, "accumulate");
  a.expect_length(out, x.cols, "cols");
  a.expect_disjoint(x.buf, out);
  sae::column_sums(x.buf.data, x.rows, x.cols, out.data, accumulate);
}

// "a * b = <a> * <b>", for a length's formula.
std::string product(const char* formula, std::size_t a, std::size_t b) {
  return std::string(formula) + " = " + std::to_string(a) + " * " + std::to_string(b);
}

// w: [dSae, dIn] -> dSae (the bound of the code's latents), checked.
std::size_t latents_of(const Args& a, const Buffer<float>& w, std::size_t d_in, const Code& c) {
  if (d_in == 0) {
    a.expect_length(w, 0, "dSae * dIn with dIn = 0");
    a.expect_latents(c, std::size_t{1} << 31, "dIn = 0");
    return 0;
  }
  if (w.length % d_in != 0) {
    a.range_error(std::string(w.name) + " has " + std::to_string(w.length) + " elements, not a multiple of dIn = " +
                  std::to_string(d_in));
  }
  const std::size_t d_sae = w.length / d_in;
  a.expect_latents(c, d_sae, "dSae = w.length / dIn = " + std::to_string(d_sae));
  return d_sae;
}

// sparseDecode(rowPtr, idx, rows, val, w, dIn, out): void
void SparseDecode(const Napi::CallbackInfo& info) {
  const Args a(info, "sparseDecode");
  const Code c = a.code(0);
  const auto val = a.float32(3, "val");
  const auto w = a.float32(4, "w");
  const std::size_t d_in = a.dim(5, "dIn");
  const auto out = a.float32(6, "out");
  a.expect_length(val, c.nnz, "nnz = rowPtr[rows]");
  latents_of(a, w, d_in, c);
  a.expect_length(out, c.rows * d_in, product("rows * dIn", c.rows, d_in));
  a.expect_apart(out, c.row_ptr, c.idx, val, w);
  sae::sparse_decode(c.csr(), val.data, w.data, d_in, out.data);
}

// sparseGatherDot(rowPtr, idx, rows, w, g, dIn, out): void
void SparseGatherDot(const Napi::CallbackInfo& info) {
  const Args a(info, "sparseGatherDot");
  const Code c = a.code(0);
  const auto w = a.float32(3, "w");
  const auto g = a.float32(4, "g");
  const std::size_t d_in = a.dim(5, "dIn");
  const auto out = a.float32(6, "out");
  const std::size_t d_sae = latents_of(a, w, d_in, c);
  a.expect_length(g, c.rows * d_in, product("rows * dIn", c.rows, d_in));
  a.expect_length(out, c.nnz, "nnz = rowPtr[rows]");
  a.expect_apart(out, c.row_ptr, c.idx, w, g);
  sae::sparse_gather_dot(c.csr(), w.data, d_sae, g.data, d_in, out.data);
}

// sparseScatter(rowPtr, idx, rows, coef, x, dIn, dSae, out, layout, accumulate): void
void SparseScatter(const Napi::CallbackInfo& info) {
  const Args a(info, "sparseScatter");
  const Code c = a.code(0);
  const auto coef = a.float32(3, "coef");
  const auto x = a.float32(4, "x");
  const std::size_t d_in = a.dim(5, "dIn");
  const std::size_t d_sae = a.dim(6, "dSae");
  const auto out = a.float32(7, "out");
  const Napi::Value layout = info[8];
  if (!layout.IsString()) a.type_error("layout must be a string, got " + describe(layout));
  const std::string name = layout.As<Napi::String>().Utf8Value();
  if (name != "rows" && name != "columns") a.range_error("layout must be 'rows' or 'columns', got '" + name + "'");
  const bool accumulate = a.boolean(9, "accumulate");
  a.expect_length(coef, c.nnz, "nnz = rowPtr[rows]");
  a.expect_length(x, c.rows * d_in, product("rows * dIn", c.rows, d_in));
  a.expect_latents(c, d_sae, "dSae = " + std::to_string(d_sae));
  a.expect_length(out, d_sae * d_in, product("dSae * dIn", d_sae, d_in));
  a.expect_apart(out, c.row_ptr, c.idx, coef, x);
  sae::sparse_scatter(c.csr(), coef.data, x.data, d_in, d_sae, out.data, name == "columns", accumulate);
}

// sparseScatterSum(rowPtr, idx, rows, coef, dSae, out, accumulate): void
void SparseScatterSum(const Napi::CallbackInfo& info) {
  const Args a(info, "sparseScatterSum");
  const Code c = a.code(0);
  const auto coef = a.float32(3, "coef");
  const std::size_t d_sae = a.dim(4, "dSae");
  const auto out = a.float32(5, "out");
  const bool accumulate = a.boolean(6, "accumulate");
  a.expect_length(coef, c.nnz, "nnz = rowPtr[rows]");
  a.expect_latents(c, d_sae, "dSae = " + std::to_string(d_sae));
  a.expect_length(out, d_sae, "dSae");
  a.expect_apart(out, c.row_ptr, c.idx, coef);
  sae::sparse_scatter_sum(c.csr(), coef.data, d_sae, out.data, accumulate);
}

// dequantize(type, src, out): void; type: a ggml type id, src: whole blocks of it, out: their values.
void Dequantize(const Napi::CallbackInfo& info) {
  const Args a(info, "dequantize");
  const int type = static_cast<int>(a.integer(0, "type", 0, 255));
  const auto src = a.uint8(1, "src");
  const auto out = a.float32(2, "out");
  std::size_t values = 0;
  std::size_t bytes = 0;
  if (!sae::dequant_block_shape(type, values, bytes)) a.range_error("ggml type " + std::to_string(type) + " cannot be dequantised");
  if (src.length % bytes != 0) {
    a.range_error("src has " + std::to_string(src.length) + " bytes, not whole blocks of " + std::to_string(bytes));
  }
  const std::size_t blocks = src.length / bytes;
  a.expect_length(out, blocks * values, product("blocks * values per block", blocks, values));
  a.expect_disjoint(out, src);
  sae::dequantize(type, src.data, blocks, out.data);
}

// setThreads(n): void; the process-wide pool, shared by every loaded copy of the kernels.
void SetThreads(const Napi::CallbackInfo& info) {
  const Args a(info, "setThreads");
  sae::Pool::instance().resize(static_cast<int>(a.integer(0, "threads", 1, kMaxThreads)));
}

// threads(): number
Napi::Value Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sae::Pool::instance().threads());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abi", Napi::Number::New(env, kAbi));
  exports.Set("simd", Napi::String::New(env, sae::simd()));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("adam", Napi::Function::New(env, Adam, "adam"));
  exports.Set("rowNorms", Napi::Function::New(env, RowNorms, "rowNorms"));
  exports.Set("normalizeRows", Napi::Function::New(env, NormalizeRows, "normalizeRows"));
  exports.Set("removeParallelComponent", Napi::Function::New(env, RemoveParallelComponent, "removeParallelComponent"));
  exports.Set("scale", Napi::Function::New(env, Scale, "scale"));
  exports.Set("nonFiniteRows", Napi::Function::New(env, NonFiniteRows, "nonFiniteRows"));
  exports.Set("subtract", Napi::Function::New(env, Subtract, "subtract"));
  exports.Set("centeredSumSquares", Napi::Function::New(env, CenteredSumSquares, "centeredSumSquares"));
  exports.Set("columnSums", Napi::Function::New(env, ColumnSums, "columnSums"));
  exports.Set("sparseDecode", Napi::Function::New(env, SparseDecode, "sparseDecode"));
  exports.Set("sparseGatherDot", Napi::Function::New(env, SparseGatherDot, "sparseGatherDot"));
  exports.Set("sparseScatter", Napi::Function::New(env, SparseScatter, "sparseScatter"));
  exports.Set("sparseScatterSum", Napi::Function::New(env, SparseScatterSum, "sparseScatterSum"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  return exports;
}

}  // namespace

NODE_API_MODULE(sae_kernels, Init)
