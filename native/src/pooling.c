/* Max pooling 2-D, NHWC (one-shot XNNPACK operator). */
#include <math.h>

#include "osn_internal.h"

#define POOL_GEOMETRY(p) \
  (p)->padding_top, (p)->padding_right, (p)->padding_bottom, (p)->padding_left, \
  (p)->pooling_height, (p)->pooling_width, (p)->stride_height, (p)->stride_width, \
  (p)->dilation_height, (p)->dilation_width, channels, channels, channels

int32_t osn_max_pooling2d(osn_datatype datatype, const osn_pooling2d_params* params, size_t batch_size,
    size_t input_height, size_t input_width, size_t channels, const void* input, void* output,
    osn_threadpool* pool) {
  OSN_CHECK(params != NULL, "max pooling: null params");
  OSN_CHECK(pool != NULL, "max pooling: null thread pool");
  OSN_CHECK(input != NULL && output != NULL, "max pooling: null input or output");
  OSN_CHECK(batch_size > 0 && input_height > 0 && input_width > 0 && channels > 0,
      "max pooling: input %zux%zux%zux%zu must be non-empty", batch_size, input_height, input_width, channels);
  OSN_CHECK(params->pooling_height > 0 && params->pooling_width > 0 && params->stride_height > 0 &&
      params->stride_width > 0 && params->dilation_height > 0 && params->dilation_width > 0,
      "max pooling: window, stride and dilation must be positive");
  OSN_CHECK(params->pooling_height * params->pooling_width > 1,
      "max pooling: a 1x1 window is not supported by XNNPACK (it is a strided copy)");
  int32_t fits = osn_check_window("max pooling", input_height, params->padding_top, params->padding_bottom,
      params->pooling_height, params->dilation_height, "height");
  if (fits == OSN_STATUS_OK)
    fits = osn_check_window("max pooling", input_width, params->padding_left, params->padding_right,
        params->pooling_width, params->dilation_width, "width");
  if (fits != OSN_STATUS_OK) return fits;
  OSN_CHECK_INIT();
  xnn_operator_t op = NULL;
  enum xnn_status setup;
  switch (datatype) {
    case OSN_DATATYPE_F32:
      OSN_CHECK_XNN(xnn_create_max_pooling2d_nhwc_f32(POOL_GEOMETRY(params), -INFINITY, INFINITY, OSN_XNN_FLAGS, &op),
          "xnn_create_max_pooling2d_nhwc_f32");
      setup = xnn_setup_max_pooling2d_nhwc_f32(op, batch_size, input_height, input_width, input, output,
          osn_pool(pool));
      break;
    case OSN_DATATYPE_F16:
      OSN_CHECK_XNN(xnn_create_max_pooling2d_nhwc_f16(POOL_GEOMETRY(params), -INFINITY, INFINITY, OSN_XNN_FLAGS, &op),
          "xnn_create_max_pooling2d_nhwc_f16");
      setup = xnn_setup_max_pooling2d_nhwc_f16(op, batch_size, input_height, input_width, input, output,
          osn_pool(pool));
      break;
    case OSN_DATATYPE_QU8:
      OSN_CHECK_XNN(xnn_create_max_pooling2d_nhwc_u8(POOL_GEOMETRY(params), 0, 255, OSN_XNN_FLAGS, &op),
          "xnn_create_max_pooling2d_nhwc_u8");
      setup = xnn_setup_max_pooling2d_nhwc_u8(op, batch_size, input_height, input_width, input, output,
          osn_pool(pool));
      break;
    default:
      return osn_fail(OSN_STATUS_INVALID_ARGUMENT, "max pooling: unknown data type %d", (int) datatype);
  }
  return osn_run_and_delete(op, setup, "xnn_setup_max_pooling2d_nhwc",
      osn_pool(pool));
}
