/* Batched matmul of two activations (attention's Q·Kᵀ and P·V). The pinned XNNPACK has no batch
   matmul, so there are two ways: pack each B into a fully-connected operator (XNNPACK's GEMM
   microkernels, plus an O(k·n) packing per item), or the direct kernel below (no packing, plain
   vectorizable loops). Packing pays off once A has enough rows to reuse the packed B. */
#include <math.h>

#include "osn_internal.h"

/* AUTO picks DIRECT for m <= this many rows per thread. Measured with `onnxstream bench-kernels`
   (2-core x86-64, AVX-512): packing B is single-threaded and costs as much as a few rows of GEMM, while
   DIRECT scales with threads; at 8 x [16x1024]x[1024x40] PACKED_GEMM wins with 1 thread (0.40 vs 0.55 ms)
   and DIRECT with 2 (0.27 vs 0.47 ms). */
#define OSN_DIRECT_MAX_ROWS_PER_THREAD 8
#define ROW_TILE 4
#define COL_TILE 256

typedef struct matmul_problem {
  size_t batch, m, k, n;
  const void* a;
  size_t a_stride;
  const void* b;
  size_t b_stride;
  void* c;
  size_t c_stride;
  int transpose_b;
} matmul_problem;

static int32_t check_problem(const char* name, const matmul_problem* p, uint32_t flags,
    osn_matmul_algorithm algorithm, osn_threadpool* pool) {
  OSN_CHECK(pool != NULL, "%s: null thread pool", name);
  OSN_CHECK(p->a != NULL && p->b != NULL && p->c != NULL, "%s: null input or output", name);
  OSN_CHECK(p->batch > 0 && p->m > 0 && p->k > 0 && p->n > 0,
      "%s: sizes must be positive (batch %zu, m %zu, k %zu, n %zu)", name, p->batch, p->m, p->k, p->n);
  OSN_CHECK((flags & ~(uint32_t) OSN_FLAG_TRANSPOSE_B) == 0, "%s: unknown flags 0x%x", name, flags);
  OSN_CHECK(algorithm == OSN_MATMUL_AUTO || algorithm == OSN_MATMUL_PACKED_GEMM || algorithm == OSN_MATMUL_DIRECT,
      "%s: unknown algorithm %d", name, (int) algorithm);
  OSN_CHECK(p->c_stride >= p->m * p->n || p->batch == 1, "%s: output batch stride %zu overlaps items of %zu elements",
      name, p->c_stride, p->m * p->n);
  return osn_ensure_initialized();
}

/* ---- Packed GEMM: one fully-connected operator per distinct B. ---- */

static int32_t packed_gemm(const matmul_problem* p, osn_datatype datatype, pthreadpool_t pool) {
  const size_t element = datatype == OSN_DATATYPE_F32 ? sizeof(float) : sizeof(uint16_t);
  /* XNNPACK's own weight layout is [n][k]; a [k][n] B needs its transpose flag. */
  const uint32_t flags = (p->transpose_b ? 0 : XNN_FLAG_TRANSPOSE_WEIGHTS) | OSN_XNN_FLAGS;
  xnn_operator_t op = NULL;
  for (size_t i = 0; i < p->batch; i++) {
    const char* b = (const char*) p->b + i * p->b_stride * element;
    if (op == NULL || p->b_stride != 0) {
      if (op != NULL) xnn_delete_operator(op);
      op = NULL;
      enum xnn_status created = datatype == OSN_DATATYPE_F32
          ? xnn_create_fully_connected_nc_f32(p->k, p->n, p->k, p->n, (const float*) b, NULL, -INFINITY, INFINITY, flags, &op)
          : xnn_create_fully_connected_nc_f16(p->k, p->n, p->k, p->n, b, NULL, -INFINITY, INFINITY, flags, &op);
      if (created != xnn_status_success) return osn_fail_xnn(created, "batch matmul: xnn_create_fully_connected_nc");
    }
    const char* a = (const char*) p->a + i * p->a_stride * element;
    char* c = (char*) p->c + i * p->c_stride * element;
    enum xnn_status status = datatype == OSN_DATATYPE_F32
        ? xnn_setup_fully_connected_nc_f32(op, p->m, (const float*) a, (float*) c, pool)
        : xnn_setup_fully_connected_nc_f16(op, p->m, a, c, pool);
    if (status == xnn_status_success) status = xnn_run_operator(op, pool);
    if (status != xnn_status_success) {
      xnn_delete_operator(op);
      return osn_fail_xnn(status, "batch matmul: fully connected run");
    }
  }
  xnn_delete_operator(op);
  return osn_ok();
}

/* ---- Direct f32 kernel: tiles of ROW_TILE rows x COL_TILE columns, parallel over tiles. ---- */

static float dot(const float* restrict x, const float* restrict y, size_t k) {
  float lanes[8] = {0};
  size_t p = 0;
  for (; p + 8 <= k; p += 8)
    for (int l = 0; l < 8; l++) lanes[l] += x[p + l] * y[p + l];
  float sum = 0.0f;
  for (; p < k; p++) sum += x[p] * y[p];
  for (int l = 0; l < 8; l++) sum += lanes[l];
  return sum;
}

static void direct_tile(void* context, size_t item, size_t row0, size_t col0, size_t rows, size_t cols) {
  const matmul_problem* p = context;
  const float* a = (const float*) p->a + item * p->a_stride + row0 * p->k;
  const float* b = (const float*) p->b + item * p->b_stride;
  float* c = (float*) p->c + item * p->c_stride + row0 * p->n + col0;
  if (p->transpose_b) {
    for (size_t r = 0; r < rows; r++)
      for (size_t j = 0; j < cols; j++) c[r * p->n + j] = dot(a + r * p->k, b + (col0 + j) * p->k, p->k);
    return;
  }
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < cols; j++) c[r * p->n + j] = 0.0f;
  /* One pass over B's rows updates every row of the tile, so each B row is loaded once per tile. */
  for (size_t q = 0; q < p->k; q++) {
    const float* restrict b_row = b + q * p->n + col0;
    for (size_t r = 0; r < rows; r++) {
      const float a_rq = a[r * p->k + q];
      float* restrict c_row = c + r * p->n;
      for (size_t j = 0; j < cols; j++) c_row[j] += a_rq * b_row[j];
    }
  }
}

static int32_t direct(const matmul_problem* p, pthreadpool_t pool) {
  pthreadpool_parallelize_3d_tile_2d(pool, direct_tile, (void*) p, p->batch, p->m, p->n, ROW_TILE, COL_TILE,
      PTHREADPOOL_FLAG_DISABLE_DENORMALS | OSN_POOL_FLAGS);
  return osn_ok();
}

int32_t osn_batch_matmul_f32(size_t batch, size_t m, size_t k, size_t n, const float* a,
    size_t a_batch_stride, const float* b, size_t b_batch_stride, float* c, size_t c_batch_stride,
    uint32_t flags, osn_matmul_algorithm algorithm, osn_threadpool* pool) {
  const matmul_problem p = {batch, m, k, n, a, a_batch_stride, b, b_batch_stride, c, c_batch_stride,
      (flags & OSN_FLAG_TRANSPOSE_B) != 0};
  int32_t status = check_problem("batch matmul f32", &p, flags, algorithm, pool);
  if (status != OSN_STATUS_OK) return status;
  if (algorithm == OSN_MATMUL_AUTO) {
    const size_t threads = pthreadpool_get_threads_count(osn_pool(pool));
    algorithm = m <= OSN_DIRECT_MAX_ROWS_PER_THREAD * threads ? OSN_MATMUL_DIRECT : OSN_MATMUL_PACKED_GEMM;
  }
  return algorithm == OSN_MATMUL_DIRECT ? direct(&p, osn_pool(pool)) : packed_gemm(&p, OSN_DATATYPE_F32, osn_pool(pool));
}

int32_t osn_batch_matmul_f16(size_t batch, size_t m, size_t k, size_t n, const uint16_t* a,
    size_t a_batch_stride, const uint16_t* b, size_t b_batch_stride, uint16_t* c,
    size_t c_batch_stride, uint32_t flags, osn_matmul_algorithm algorithm, osn_threadpool* pool) {
  const matmul_problem p = {batch, m, k, n, a, a_batch_stride, b, b_batch_stride, c, c_batch_stride,
      (flags & OSN_FLAG_TRANSPOSE_B) != 0};
  int32_t status = check_problem("batch matmul f16", &p, flags, algorithm, pool);
  if (status != OSN_STATUS_OK) return status;
  if (algorithm == OSN_MATMUL_DIRECT) return osn_fail(OSN_STATUS_UNSUPPORTED, "batch matmul f16: the direct kernel is f32 only");
  return packed_gemm(&p, OSN_DATATYPE_F16, osn_pool(pool));
}
