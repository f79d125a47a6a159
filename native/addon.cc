// The Node-API boundary: checks every argument (types, lengths against rows * cols, disjoint
// buffers, finite scalars), throws a JS TypeError/RangeError naming the kernel and the argument,
// then runs the kernel in place on the JS buffers (no copies). Surface: src/engine/binding.ts.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels.h"
#include "pool.h"

namespace {

// Bump with every change to the surface; src/engine/binding.ts checks it.
constexpr int kAbi = 1;
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
  return exports;
}

}  // namespace

NODE_API_MODULE(sae_kernels, Init)
