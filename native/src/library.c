/* Errors, initialization, memory accounting of XNNPACK's allocations, thread pools, handles. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <math.h>

#include "osn_internal.h"

#if defined(_MSC_VER)
#  define OSN_THREAD_LOCAL __declspec(thread)
#else
#  define OSN_THREAD_LOCAL _Thread_local
#endif

static OSN_THREAD_LOCAL char last_error[512];

const char* osn_last_error(void) { return last_error; }

const char* osn_xnnpack_commit(void) { return OSN_XNNPACK_COMMIT; }

int32_t osn_ok(void) {
  last_error[0] = '\0';
  return OSN_STATUS_OK;
}

int32_t osn_fail(int32_t status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(last_error, sizeof(last_error), format, args);
  va_end(args);
  return status;
}

int32_t osn_fail_xnn(enum xnn_status status, const char* call) {
  switch (status) {
    case xnn_status_invalid_parameter:
      return osn_fail(OSN_STATUS_INVALID_ARGUMENT, "%s: invalid parameter", call);
    case xnn_status_unsupported_parameter:
      return osn_fail(OSN_STATUS_UNSUPPORTED, "%s: parameter combination not supported by XNNPACK", call);
    case xnn_status_unsupported_hardware:
      return osn_fail(OSN_STATUS_UNSUPPORTED_HARDWARE, "%s: not supported on this processor", call);
    case xnn_status_out_of_memory:
      return osn_fail(OSN_STATUS_OUT_OF_MEMORY, "%s: out of memory", call);
    case xnn_status_uninitialized:
      return osn_fail(OSN_STATUS_UNINITIALIZED, "%s: XNNPACK is not initialized", call);
    default:
      return osn_fail(OSN_STATUS_INTERNAL_ERROR, "%s: XNNPACK status %d", call, (int) status);
  }
}

int32_t osn_check_quantization(osn_quantization q, const char* what) {
  OSN_CHECK(q.zero_point >= 0 && q.zero_point <= 255, "%s zero point %d is outside 0..255", what, (int) q.zero_point);
  OSN_CHECK(q.scale > 0.0f && q.scale < 1e38f, "%s scale %g must be positive and finite", what, (double) q.scale);
  return OSN_STATUS_OK;
}

/* ---- Memory accounting: every block XNNPACK allocates carries a header with its size. ---- */

typedef struct block_header {
  void* base;     /* what malloc or osn_take_block returned */
  size_t size;    /* bytes the caller asked for */
  size_t mapped;  /* bytes of a large block from osn_take_block; 0 for malloc */
} block_header;

/* 64 bytes keeps the payload of plain allocations aligned as well as XNNPACK's SIMD memory wants. */
#define OSN_HEADER_SPACE 64

static atomic_llong current_bytes;
static atomic_llong peak_bytes;

static void account(long long delta) {
  long long now = atomic_fetch_add(&current_bytes, delta) + delta;
  long long peak = atomic_load(&peak_bytes);
  while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
  }
}

static void* aligned_allocate(void* context, size_t alignment, size_t size) {
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  size_t space = alignment > OSN_HEADER_SPACE ? alignment : OSN_HEADER_SPACE;
  /* Packed weights of streamed operators are large and short-lived: large blocks go back to the system. */
  const size_t total = size + space + alignment;
  int32_t zeroed;
  const size_t mapped = total >= OSN_LARGE_BLOCK_BYTES ? total : 0;
  char* base = mapped != 0 ? osn_take_block(total, &zeroed) : malloc(total);
  if (base == NULL) return NULL;
  uintptr_t payload = ((uintptr_t) base + space + alignment - 1) & ~(uintptr_t) (alignment - 1);
  block_header* header = (block_header*) payload - 1;
  header->base = base;
  header->size = size;
  header->mapped = mapped;
  account((long long) size);
  return (void*) payload;
}

static void deallocate(void* context, void* pointer) {
  if (pointer == NULL) return;
  block_header* header = (block_header*) pointer - 1;
  account(-(long long) header->size);
  if (header->mapped != 0) osn_give_block(header->base, header->mapped);
  else free(header->base);
}

static void* allocate(void* context, size_t size) { return aligned_allocate(context, OSN_HEADER_SPACE, size); }

static void* reallocate(void* context, void* pointer, size_t size) {
  if (pointer == NULL) return allocate(context, size);
  void* moved = allocate(context, size);
  if (moved == NULL) return NULL;
  block_header* header = (block_header*) pointer - 1;
  memcpy(moved, pointer, header->size < size ? header->size : size);
  deallocate(context, pointer);
  return moved;
}

static const struct xnn_allocator accounting_allocator = {
  .context = NULL,
  .allocate = allocate,
  .reallocate = reallocate,
  .deallocate = deallocate,
  .aligned_allocate = aligned_allocate,
  .aligned_deallocate = deallocate,
};

int32_t osn_memory_stats(int64_t* current, int64_t* peak) {
  OSN_CHECK(current != NULL && peak != NULL, "osn_memory_stats: null output pointer");
  *current = atomic_load(&current_bytes);
  *peak = atomic_load(&peak_bytes);
  return osn_ok();
}

int32_t osn_reset_peak_bytes(void) {
  atomic_store(&peak_bytes, atomic_load(&current_bytes));
  return osn_ok();
}

/* ---- Initialization ---- */

static atomic_int initialized;

int32_t osn_ensure_initialized(void) {
  if (atomic_load(&initialized)) return OSN_STATUS_OK;
  /* xnn_initialize is idempotent and thread-safe; racing first calls all pass the same allocator. */
  OSN_CHECK_XNN(xnn_initialize(&accounting_allocator), "xnn_initialize");
  atomic_store(&initialized, 1);
  return OSN_STATUS_OK;
}

int32_t osn_initialize(void) {
  OSN_CHECK_INIT();
  return osn_ok();
}

int32_t osn_capabilities(uint32_t* capabilities) {
  OSN_CHECK(capabilities != NULL, "osn_capabilities: null output pointer");
  OSN_CHECK_INIT();
  uint32_t bits = 0;
  /* The pinned XNNPACK has no query: creating an f16 operator is how it says whether f16 runs. */
  xnn_operator_t probe = NULL;
  if (xnn_create_add_nd_f16(-INFINITY, INFINITY, 0, &probe) == xnn_status_success) {
    bits |= OSN_CAPABILITY_F16;
    xnn_delete_operator(probe);
  }
  *capabilities = bits;
  return osn_ok();
}

/* ---- Thread pools ---- */

int32_t osn_threadpool_create(uint32_t threads, osn_threadpool** pool_out) {
  OSN_CHECK(pool_out != NULL, "osn_threadpool_create: null output pointer");
  *pool_out = NULL;
  OSN_CHECK(threads >= 1 && threads <= 1024, "osn_threadpool_create: thread count %u must be 1..1024", threads);
  OSN_CHECK_INIT();
  pthreadpool_t pool = pthreadpool_create(threads);
  if (pool == NULL) return osn_fail(OSN_STATUS_OUT_OF_MEMORY, "osn_threadpool_create: could not start %u threads", threads);
  *pool_out = (osn_threadpool*) pool;
  return osn_ok();
}

int32_t osn_threadpool_thread_count(osn_threadpool* pool, uint32_t* threads_out) {
  OSN_CHECK(pool != NULL, "osn_threadpool_thread_count: null pool");
  OSN_CHECK(threads_out != NULL, "osn_threadpool_thread_count: null output pointer");
  *threads_out = (uint32_t) pthreadpool_get_threads_count(osn_pool(pool));
  return osn_ok();
}

int32_t osn_threadpool_destroy(osn_threadpool* pool) {
  OSN_CHECK(pool != NULL, "osn_threadpool_destroy: null pool");
  pthreadpool_destroy(osn_pool(pool));
  return osn_ok();
}

/* ---- Operators ---- */

int32_t osn_operator_wrap(xnn_operator_t xnn, osn_operator_kind kind, osn_datatype datatype,
    osn_operator** op_out) {
  osn_operator* op = malloc(sizeof(osn_operator));
  if (op == NULL) {
    xnn_delete_operator(xnn);
    return osn_fail(OSN_STATUS_OUT_OF_MEMORY, "out of memory for an operator handle");
  }
  op->xnn = xnn;
  op->kind = kind;
  op->datatype = datatype;
  *op_out = op;
  return osn_ok();
}

int32_t osn_check_window(const char* name, size_t input, uint32_t padding_before, uint32_t padding_after,
    uint32_t window, uint32_t dilation, const char* axis) {
  const size_t padded = input + padding_before + padding_after;
  const size_t effective = (size_t) dilation * (window - 1) + 1;
  OSN_CHECK(padded >= effective, "%s: padded input %s %zu is smaller than the dilated window %zu", name, axis,
      padded, effective);
  return OSN_STATUS_OK;
}

int32_t osn_operator_destroy(osn_operator* op) {
  OSN_CHECK(op != NULL, "osn_operator_destroy: null operator");
  xnn_delete_operator(op->xnn);
  free(op);
  return osn_ok();
}

int32_t osn_run_and_delete(xnn_operator_t op, enum xnn_status setup_status, const char* setup_name,
    pthreadpool_t pool) {
  enum xnn_status status = setup_status;
  const char* failed = setup_name;
  if (status == xnn_status_success) {
    status = xnn_run_operator(op, pool);
    failed = "xnn_run_operator";
  }
  xnn_delete_operator(op);
  return status == xnn_status_success ? osn_ok() : osn_fail_xnn(status, failed);
}
