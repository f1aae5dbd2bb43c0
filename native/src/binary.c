/* Add, Subtract, Multiply, Divide with NumPy broadcasting (one-shot XNNPACK nd operators). */
#include <math.h>
#include <stdio.h>

#include "osn_internal.h"

static const char* operation_name(osn_binary_operation operation) {
  switch (operation) {
    case OSN_BINARY_ADD: return "add";
    case OSN_BINARY_SUBTRACT: return "subtract";
    case OSN_BINARY_MULTIPLY: return "multiply";
    case OSN_BINARY_DIVIDE: return "divide";
    default: return NULL;
  }
}

static void format_shape(char* text, size_t capacity, size_t rank, const size_t* shape) {
  size_t used = (size_t) snprintf(text, capacity, "[");
  for (size_t i = 0; i < rank && used < capacity; i++)
    used += (size_t) snprintf(text + used, capacity - used, i == 0 ? "%zu" : ",%zu", shape[i]);
  if (used < capacity) snprintf(text + used, capacity - used, "]");
}

/* Validates ranks, shapes and that they broadcast; names the operation and the shapes if not. */
static int32_t check_operands(osn_binary_operation operation, const char* type, size_t a_rank,
    const size_t* a_shape, size_t b_rank, const size_t* b_shape, const void* a, const void* b,
    const void* output, osn_threadpool* pool) {
  const char* name = operation_name(operation);
  OSN_CHECK(name != NULL, "binary %s: unknown operation %d", type, (int) operation);
  OSN_CHECK(pool != NULL, "%s %s: null thread pool", name, type);
  OSN_CHECK(a != NULL && b != NULL && output != NULL, "%s %s: null input or output", name, type);
  OSN_CHECK(a_rank <= OSN_MAX_DIMS && b_rank <= OSN_MAX_DIMS, "%s %s: ranks %zu and %zu exceed %d",
      name, type, a_rank, b_rank, OSN_MAX_DIMS);
  OSN_CHECK((a_rank == 0 || a_shape != NULL) && (b_rank == 0 || b_shape != NULL), "%s %s: null shape",
      name, type);
  size_t rank = a_rank > b_rank ? a_rank : b_rank;
  for (size_t i = 1; i <= rank; i++) {
    size_t da = i <= a_rank ? a_shape[a_rank - i] : 1;
    size_t db = i <= b_rank ? b_shape[b_rank - i] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[128], sb[128];
      format_shape(sa, sizeof(sa), a_rank, a_shape);
      format_shape(sb, sizeof(sb), b_rank, b_shape);
      return osn_fail(OSN_STATUS_INVALID_ARGUMENT, "%s %s: shapes %s and %s do not broadcast (axis -%zu: %zu vs %zu)",
          name, type, sa, sb, i, da, db);
    }
  }
  return osn_ensure_initialized();
}

#define BINARY_SHAPES a_rank, a_shape, b_rank, b_shape

int32_t osn_binary_f32(osn_binary_operation operation, size_t a_rank, const size_t* a_shape,
    const float* a, size_t b_rank, const size_t* b_shape, const float* b, float* output,
    osn_threadpool* pool) {
  int32_t status = check_operands(operation, "f32", BINARY_SHAPES, a, b, output, pool);
  if (status != OSN_STATUS_OK) return status;
  xnn_operator_t op = NULL;
  enum xnn_status setup;
  switch (operation) {
    case OSN_BINARY_ADD:
      OSN_CHECK_XNN(xnn_create_add_nd_f32(-INFINITY, INFINITY, OSN_XNN_FLAGS, &op), "xnn_create_add_nd_f32");
      setup = xnn_setup_add_nd_f32(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    case OSN_BINARY_SUBTRACT:
      OSN_CHECK_XNN(xnn_create_subtract_nd_f32(-INFINITY, INFINITY, OSN_XNN_FLAGS, &op), "xnn_create_subtract_nd_f32");
      setup = xnn_setup_subtract_nd_f32(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    case OSN_BINARY_MULTIPLY:
      OSN_CHECK_XNN(xnn_create_multiply_nd_f32(-INFINITY, INFINITY, OSN_XNN_FLAGS, &op), "xnn_create_multiply_nd_f32");
      setup = xnn_setup_multiply_nd_f32(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    default:
      OSN_CHECK_XNN(xnn_create_divide_nd_f32(-INFINITY, INFINITY, OSN_XNN_FLAGS, &op), "xnn_create_divide_nd_f32");
      setup = xnn_setup_divide_nd_f32(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
  }
  return osn_run_and_delete(op, setup, "xnn_setup_binary_nd_f32", osn_pool(pool));
}

int32_t osn_binary_f16(osn_binary_operation operation, size_t a_rank, const size_t* a_shape,
    const uint16_t* a, size_t b_rank, const size_t* b_shape, const uint16_t* b, uint16_t* output,
    osn_threadpool* pool) {
  int32_t status = check_operands(operation, "f16", BINARY_SHAPES, a, b, output, pool);
  if (status != OSN_STATUS_OK) return status;
  xnn_operator_t op = NULL;
  enum xnn_status setup;
  switch (operation) {
    case OSN_BINARY_ADD:
      OSN_CHECK_XNN(xnn_create_add_nd_f16(-INFINITY, INFINITY, OSN_XNN_FLAGS, &op), "xnn_create_add_nd_f16");
      setup = xnn_setup_add_nd_f16(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    case OSN_BINARY_MULTIPLY:
      OSN_CHECK_XNN(xnn_create_multiply_nd_f16(-INFINITY, INFINITY, OSN_XNN_FLAGS, &op), "xnn_create_multiply_nd_f16");
      setup = xnn_setup_multiply_nd_f16(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    default:
      return osn_fail(OSN_STATUS_UNSUPPORTED, "%s f16: the pinned XNNPACK has no f16 kernel for it",
          operation_name(operation));
  }
  return osn_run_and_delete(op, setup, "xnn_setup_binary_nd_f16", osn_pool(pool));
}

int32_t osn_binary_qu8(osn_binary_operation operation, size_t a_rank, const size_t* a_shape,
    const uint8_t* a, osn_quantization a_quantization, size_t b_rank, const size_t* b_shape,
    const uint8_t* b, osn_quantization b_quantization, uint8_t* output,
    osn_quantization output_quantization, osn_threadpool* pool) {
  int32_t status = check_operands(operation, "qu8", BINARY_SHAPES, a, b, output, pool);
  if (status == OSN_STATUS_OK) status = osn_check_quantization(a_quantization, "first operand");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(b_quantization, "second operand");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(output_quantization, "output");
  if (status != OSN_STATUS_OK) return status;
  const uint8_t za = (uint8_t) a_quantization.zero_point, zb = (uint8_t) b_quantization.zero_point;
  const uint8_t zo = (uint8_t) output_quantization.zero_point;
  const float sa = a_quantization.scale, sb = b_quantization.scale, so = output_quantization.scale;
  xnn_operator_t op = NULL;
  enum xnn_status setup;
  switch (operation) {
    case OSN_BINARY_ADD:
      OSN_CHECK_XNN(xnn_create_add_nd_qu8(za, sa, zb, sb, zo, so, 0, 255, OSN_XNN_FLAGS, &op), "xnn_create_add_nd_qu8");
      setup = xnn_setup_add_nd_qu8(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    case OSN_BINARY_SUBTRACT:
      OSN_CHECK_XNN(xnn_create_subtract_nd_qu8(za, sa, zb, sb, zo, so, 0, 255, OSN_XNN_FLAGS, &op), "xnn_create_subtract_nd_qu8");
      setup = xnn_setup_subtract_nd_qu8(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    case OSN_BINARY_MULTIPLY:
      OSN_CHECK_XNN(xnn_create_multiply_nd_qu8(za, sa, zb, sb, zo, so, 0, 255, OSN_XNN_FLAGS, &op), "xnn_create_multiply_nd_qu8");
      setup = xnn_setup_multiply_nd_qu8(op, BINARY_SHAPES, a, b, output, osn_pool(pool));
      break;
    default:
      return osn_fail(OSN_STATUS_UNSUPPORTED, "divide qu8: the pinned XNNPACK has no qu8 kernel for it");
  }
  return osn_run_and_delete(op, setup, "xnn_setup_binary_nd_qu8", osn_pool(pool));
}
