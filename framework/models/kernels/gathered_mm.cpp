// Products over a subset of a weight's rows, read in place (no gathered copy of the weight).
//
// Structured dropout in an LSTM (Sarma et al., NeurIPS 2021) keeps k of the H units of h_{t-1}
// at each step, the same units for the whole batch, so the recurrent product needs only the k
// kept rows of W_hh^T (H x 4H). torch can only reach them by gathering them into a new tensor
// first (index_select), which reads and writes as much memory as the smaller product saves. The
// three kernels here read the kept rows where they are:
//
//   rows_mm_     out[m, n]  += alpha * sum_j a_t[j, m] * w[idx[j], n]              (forward)
//   rows_dot     out[j, m]   = sum_n w[idx[j], n] * g_t[n, m]                      (input grad)
//   rows_add_mm  w_grad[idx[j], n] += alpha * sum_m a_t[j, m] * g[m, n]             (weight grad)
//
// a_t is the kept columns of h_{t-1}, transposed (k x M, M the batch); g the gate gradient
// (M x N) and g_t its transpose. Each kernel accumulates tiles of 4 rows x 64 columns in 16
// AVX-512 registers (register blocking as in any GEMM micro-kernel), in blocks that torch's
// intra-op threads share out; columns must be multiples of 16 (the caller falls back to torch
// otherwise). Without AVX-512 a plain loop does the same, slowly (the caller does not use it).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kChunk = 512;  // inner-dimension block whose operand panel stays in L2

#if defined(__AVX512F__)

// acc[r][v] += a[l * lda + r] * w[idx[l] * ldw + 16 v], over l < L: the weight rows indirect.
template <int R, int V>
inline __attribute__((always_inline)) void tile_indirect(
    int64_t L, const float* a, int64_t lda, const int64_t* idx, const float* w, int64_t ldw,
    __m512 (&acc)[R][V]) {
  for (int64_t l = 0; l < L; ++l) {
    const float* row = w + idx[l] * ldw;
    __m512 wv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(row + 16 * v);
    const float* al = a + l * lda;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 s = _mm512_set1_ps(al[r]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(s, wv[v], acc[r][v]);
    }
  }
}

// acc[r][v] += s[r][l] * b[l * ldb + 16 v], over l < L: each row's scalars contiguous.
template <int R, int V>
inline __attribute__((always_inline)) void tile_direct(
    int64_t L, const float* const (&s)[R], const float* b, int64_t ldb, __m512 (&acc)[R][V]) {
  for (int64_t l = 0; l < L; ++l) {
    const float* bl = b + l * ldb;
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_ps(bl + 16 * v);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(s[r][l]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
    }
  }
}

template <int R, int V>
inline void zero(__m512 (&acc)[R][V]) {
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
}

// out[m0 + r, n0 + 16 v] += alpha * acc (out already holds src).
template <int R, int V>
inline void add_out(const __m512 (&acc)[R][V], float alpha, float* out, int64_t ldo) {
  const __m512 a = _mm512_set1_ps(alpha);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      float* p = out + r * ldo + 16 * v;
      _mm512_storeu_ps(p, _mm512_fmadd_ps(a, acc[r][v], _mm512_loadu_ps(p)));
    }
}

template <int R, int V>
void rows_mm_block(int64_t m0, int64_t n0, int64_t k, int64_t M, const float* a_t,
                   const int64_t* idx, const float* w, int64_t N, float alpha, float* out) {
  __m512 acc[R][V];
  zero(acc);
  tile_indirect<R, V>(k, a_t + m0, M, idx, w + n0, N, acc);
  add_out(acc, alpha, out + m0 * N + n0, N);
}

template <int V>
void rows_mm_columns(int64_t n0, int64_t k, int64_t M, const float* a_t, const int64_t* idx,
                     const float* w, int64_t N, float alpha, float* out) {
  int64_t m0 = 0;
  for (; m0 + 4 <= M; m0 += 4) rows_mm_block<4, V>(m0, n0, k, M, a_t, idx, w, N, alpha, out);
  for (; m0 < M; ++m0) rows_mm_block<1, V>(m0, n0, k, M, a_t, idx, w, N, alpha, out);
}

template <int R, int V>
void rows_dot_block(int64_t j0, int64_t m0, int64_t n_lo, int64_t n_hi, const int64_t* idx,
                    const float* w, int64_t N, const float* g_t, int64_t M, float* out) {
  __m512 acc[R][V];
  const float* s[R];
  for (int r = 0; r < R; ++r) s[r] = w + idx[j0 + r] * N + n_lo;
  if (n_lo == 0) {
    zero(acc);
  } else {
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_loadu_ps(out + (j0 + r) * M + m0 + 16 * v);
  }
  tile_direct<R, V>(n_hi - n_lo, s, g_t + n_lo * M + m0, M, acc);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(out + (j0 + r) * M + m0 + 16 * v, acc[r][v]);
}

template <int R>
void rows_dot_rows(int64_t j0, int64_t n_lo, int64_t n_hi, const int64_t* idx, const float* w,
                   int64_t N, const float* g_t, int64_t M, float* out) {
  int64_t m0 = 0;
  for (; m0 + 64 <= M; m0 += 64) rows_dot_block<R, 4>(j0, m0, n_lo, n_hi, idx, w, N, g_t, M, out);
  for (; m0 < M; m0 += 16) rows_dot_block<R, 1>(j0, m0, n_lo, n_hi, idx, w, N, g_t, M, out);
}

template <int R, int V>
void rows_add_block(int64_t j0, int64_t n0, const int64_t* idx, const float* a_t, int64_t M,
                    const float* g, int64_t N, float alpha, float* w_grad) {
  __m512 acc[R][V];
  const float* s[R];
  for (int r = 0; r < R; ++r) s[r] = a_t + (j0 + r) * M;
  zero(acc);
  tile_direct<R, V>(M, s, g + n0, N, acc);
  const __m512 a = _mm512_set1_ps(alpha);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      float* p = w_grad + idx[j0 + r] * N + n0 + 16 * v;
      _mm512_storeu_ps(p, _mm512_fmadd_ps(a, acc[r][v], _mm512_loadu_ps(p)));
    }
}

template <int R>
void rows_add_rows(int64_t j0, int64_t n_lo, int64_t n_hi, const int64_t* idx, const float* a_t,
                   int64_t M, const float* g, int64_t N, float alpha, float* w_grad) {
  int64_t n0 = n_lo;
  for (; n0 + 64 <= n_hi; n0 += 64)
    rows_add_block<R, 4>(j0, n0, idx, a_t, M, g, N, alpha, w_grad);
  for (; n0 < n_hi; n0 += 16) rows_add_block<R, 1>(j0, n0, idx, a_t, M, g, N, alpha, w_grad);
}

#endif  // __AVX512F__

void check(const torch::Tensor& t, int64_t dim, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == dim &&
                  t.is_contiguous(),
              name, " must be a contiguous float32 CPU tensor of ", dim, " dimensions");
}

void check_idx(const torch::Tensor& idx) {
  TORCH_CHECK(idx.device().is_cpu() && idx.scalar_type() == torch::kInt64 && idx.dim() == 1 &&
                  idx.is_contiguous(),
              "idx must be a contiguous int64 CPU vector");
}

// What both in-place products check: a_t (k x M) against an M x N operand (the output, or the
// gradient), a weight (or its gradient) of N columns, N a multiple of 16, and the k indices.
void check_rows(const char* op, const torch::Tensor& a_t, const torch::Tensor& mn,
                const torch::Tensor& w, const torch::Tensor& idx) {
  check(a_t, 2, "a_t");
  check(mn, 2, "the M x N operand");
  check(w, 2, "the weight");
  check_idx(idx);
  TORCH_CHECK(a_t.size(0) == idx.size(0) && a_t.size(1) == mn.size(0) &&
                  w.size(1) == mn.size(1) && mn.size(1) % 16 == 0,
              op, ": shapes do not match (or columns not a multiple of 16)");
}

}  // namespace

// out += alpha * a_t^T @ w[idx], in place   (out: M x N, a_t: k x M, w: R x N, idx: k)
void rows_mm_(torch::Tensor out, const torch::Tensor& a_t, const torch::Tensor& w,
              const torch::Tensor& idx, double alpha) {
  check_rows("rows_mm_", a_t, out, w, idx);
  const int64_t M = out.size(0), N = out.size(1), k = idx.size(0);
  const float* pa = a_t.data_ptr<float>();
  const float* pw = w.data_ptr<float>();
  const int64_t* pi = idx.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
#if defined(__AVX512F__)
  // Blocks of 64 columns are independent: torch's intra-op threads share them out.
  at::parallel_for(0, N / 64, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b)
      rows_mm_columns<4>(b * 64, k, M, pa, pi, pw, N, (float)alpha, po);
  });
  for (int64_t n0 = N / 64 * 64; n0 < N; n0 += 16)
    rows_mm_columns<1>(n0, k, M, pa, pi, pw, N, (float)alpha, po);
#else
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < k; ++j) {
      const float s = (float)alpha * pa[j * M + m];
      const float* row = pw + pi[j] * N;
      float* o = po + m * N;
      for (int64_t n = 0; n < N; ++n) o[n] += s * row[n];
    }
#endif
}

// out (k x M) = w[idx] @ g_t   (w: R x N, g_t: N x M)
torch::Tensor rows_dot(const torch::Tensor& g_t, const torch::Tensor& w, const torch::Tensor& idx) {
  check(g_t, 2, "g_t");
  check(w, 2, "w");
  check_idx(idx);
  const int64_t N = g_t.size(0), M = g_t.size(1), k = idx.size(0);
  TORCH_CHECK(w.size(1) == N && M % 16 == 0,
              "rows_dot: shapes do not match (or the batch not a multiple of 16)");
  torch::Tensor out = torch::empty({k, M}, g_t.options());
  const float* pg = g_t.data_ptr<float>();
  const float* pw = w.data_ptr<float>();
  const int64_t* pi = idx.data_ptr<int64_t>();
  float* po = out.data_ptr<float>();
#if defined(__AVX512F__)
  for (int64_t n_lo = 0; n_lo < N; n_lo += kChunk) {
    const int64_t n_hi = std::min(N, n_lo + kChunk);
    // Blocks of 4 output rows are independent: torch's intra-op threads share them out.
    at::parallel_for(0, k / 4, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        rows_dot_rows<4>(b * 4, n_lo, n_hi, pi, pw, N, pg, M, po);
    });
    for (int64_t j0 = k / 4 * 4; j0 < k; ++j0)
      rows_dot_rows<1>(j0, n_lo, n_hi, pi, pw, N, pg, M, po);
  }
#else
  out.zero_();
  for (int64_t j = 0; j < k; ++j) {
    const float* row = pw + pi[j] * N;
    float* o = po + j * M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m) o[m] += row[n] * pg[n * M + m];
  }
#endif
  return out;
}

// w_grad[idx] += alpha * a_t @ g   (w_grad: R x N, a_t: k x M, g: M x N), in place
void rows_add_mm(torch::Tensor w_grad, const torch::Tensor& a_t, const torch::Tensor& g,
                 const torch::Tensor& idx, double alpha) {
  check_rows("rows_add_mm", a_t, g, w_grad, idx);
  const int64_t M = g.size(0), N = g.size(1), k = idx.size(0);
  const float* pa = a_t.data_ptr<float>();
  const float* pg = g.data_ptr<float>();
  const int64_t* pi = idx.data_ptr<int64_t>();
  float* pw = w_grad.data_ptr<float>();
#if defined(__AVX512F__)
  // Chunks of columns are independent (each writes its own columns of the kept rows), so
  // torch's intra-op threads share them out; duplicate indices would then still add up right.
  at::parallel_for(0, (N + kChunk - 1) / kChunk, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t n_lo = c * kChunk, n_hi = std::min(N, n_lo + kChunk);
      int64_t j0 = 0;
      for (; j0 + 4 <= k; j0 += 4)
        rows_add_rows<4>(j0, n_lo, n_hi, pi, pa, M, pg, N, (float)alpha, pw);
      for (; j0 < k; ++j0) rows_add_rows<1>(j0, n_lo, n_hi, pi, pa, M, pg, N, (float)alpha, pw);
    }
  });
#else
  for (int64_t j = 0; j < k; ++j) {
    float* row = pw + pi[j] * N;
    for (int64_t m = 0; m < M; ++m) {
      const float s = (float)alpha * pa[j * M + m];
      const float* gm = pg + m * N;
      for (int64_t n = 0; n < N; ++n) row[n] += s * gm[n];
    }
  }
#endif
}

bool vectorized() {
#if defined(__AVX512F__)
  return true;
#else
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rows_mm_", &rows_mm_, "out += alpha * a_t^T @ w[idx], in place");
  m.def("rows_dot", &rows_dot, "w[idx] @ g_t, w's rows read in place");
  m.def("rows_add_mm", &rows_add_mm, "w_grad[idx] += alpha * a_t @ g, in place");
  m.def("vectorized", &vectorized, "whether the AVX-512 kernels were compiled in");
}
