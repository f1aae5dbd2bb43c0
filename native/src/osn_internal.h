/* Shared by the shim's sources: error reporting, argument checks, the operator handle. */
#ifndef OSN_INTERNAL_H
#define OSN_INTERNAL_H

#include <xnnpack.h>
#include <pthreadpool.h>

#include "onnxstream_native.h"

/*
 * Flags every XNNPACK operator is created with. XNN_FLAG_YIELD_WORKERS: when an operator finishes, the pool's
 * worker threads sleep at once instead of spin-waiting (pthreadpool spins a million iterations, tens of
 * milliseconds, for the next command). Between XNNPACK calls the engine runs managed parallel work, and other
 * processes share the cores; spinning workers took those cores (measured: two threads cost 2.5x the processor
 * time of one on the tiny UNet, 16x on a loaded machine).
 */
#define OSN_XNN_FLAGS XNN_FLAG_YIELD_WORKERS

/* The same for the shim's own pthreadpool calls (transposes, the direct matmul): without it a worker spun after each
 * of them, and a streaming UNet run, which transposes every convolution's kernel blocks, spent a third of its
 * processor time in pthreadpool's spin loop. */
#define OSN_POOL_FLAGS PTHREADPOOL_FLAG_YIELD_WORKERS

/* Records a formatted error for the calling thread and returns status. */
int32_t osn_fail(int32_t status, const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Translates an XNNPACK failure of `call` into an osn status with a readable text. */
int32_t osn_fail_xnn(enum xnn_status status, const char* call);

/* Initializes XNNPACK if needed; returns OSN_STATUS_OK or the failure. */
int32_t osn_ensure_initialized(void);

/* Records a success: clears the thread's error text. */
int32_t osn_ok(void);

#define OSN_CHECK(condition, ...) \
  do { if (!(condition)) return osn_fail(OSN_STATUS_INVALID_ARGUMENT, __VA_ARGS__); } while (0)

#define OSN_CHECK_INIT() \
  do { int32_t s_ = osn_ensure_initialized(); if (s_ != OSN_STATUS_OK) return s_; } while (0)

#define OSN_CHECK_XNN(call_expr, name) \
  do { enum xnn_status x_ = (call_expr); if (x_ != xnn_status_success) return osn_fail_xnn(x_, name); } while (0)

/* A large block (see osn_block_allocate), without touching the thread's error text; NULL when out of memory. */
void* osn_take_block(size_t bytes, int32_t* zeroed);
void osn_give_block(void* block, size_t bytes);

/* Checks a quantization parameter and names it in the error. */
int32_t osn_check_quantization(osn_quantization q, const char* what);

static inline pthreadpool_t osn_pool(osn_threadpool* pool) { return (pthreadpool_t) pool; }

typedef enum osn_operator_kind {
  OSN_KIND_FULLY_CONNECTED = 1,
  OSN_KIND_CONVOLUTION2D = 2,
} osn_operator_kind;

struct osn_operator {
  xnn_operator_t xnn;
  osn_operator_kind kind;
  osn_datatype datatype;
  /* Convolutions only: checked at run time, since XNNPACK treats a too-small input as padding. */
  osn_convolution2d_params convolution;
};

/* Fails unless a window (kernel or pooling) fits the padded input along one axis. */
int32_t osn_check_window(const char* name, size_t input, uint32_t padding_before, uint32_t padding_after,
    uint32_t window, uint32_t dilation, const char* axis);

/* Wraps a created XNNPACK operator; deletes it and fails if the handle cannot be allocated. */
int32_t osn_operator_wrap(xnn_operator_t xnn, osn_operator_kind kind, osn_datatype datatype,
    osn_operator** op_out);

/* Setup+run of a one-shot XNNPACK operator, then delete it whatever happened. */
int32_t osn_run_and_delete(xnn_operator_t op, enum xnn_status setup_status, const char* setup_name,
    pthreadpool_t pool);

#endif
