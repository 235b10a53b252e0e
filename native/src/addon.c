/* N-API surface of FedSeg's native kernels (plain C node_api.h: binary-compatible across Node and
 * Electron versions). Every entry point checks typed-array lengths against the shapes it is given
 * before any native code touches memory, and throws a TypeError/RangeError otherwise.
 *
 *   conv3d(x, xShape, w, wShape, y, yShape, strides, pads, dilations)            writes y
 *   conv3dBackpropInput(dy, dyShape, w, wShape, dx, dxShape, strides, pads, dil)  writes dx
 *   conv3dBackpropFilter(x, xShape, dy, dyShape, dw, wShape, strides, pads, dil)  writes dw
 *   tile(x, xShape, reps, out)                                                  writes out
 *   slice(x, xShape, begin, size, out)                                          writes out
 *   maxPool3d(x, xShape, y, yShape, filter, strides, pads)                       writes y
 *   maxPool3dGrad(x, xShape, dy, dyShape, dx, filter, strides, pads)            writes dx
 *   sumRows(x, rows, cols, out)                                                   writes out[cols]
 *   dropout(x, seed, threshold, scale, out)                                       writes out
 *   setThreads(n), info() -> { isa, threads, version }
 * Shapes: x/y/dx/dy NDHWC [n, d, h, w, c]; filter DHWIO [kd, kh, kw, cin, cout]; strides/dilations
 * [d, h, w]; pads = padding before each spatial dimension [front, top, left], as TF.js computes it
 * (negative for some odd "same" cases, where TF.js skips leading input). */
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include "conv3d.h"
#include "dropout.h"
#include "gemm.h"
#include "movement.h"
#include "platform.h"
#include "pool3d.h"
#include "reduce.h"
#include "thread_pool.h"

#define ADDON_VERSION 5

#define CHECK(call)                                                       \
  do {                                                                    \
    if ((call) != napi_ok) {                                              \
      napi_throw_error(env, NULL, "fedseg_native: N-API call failed: " #call); \
      return NULL;                                                        \
    }                                                                     \
  } while (0)

static int get_f32(napi_env env, napi_value v, float **data, size_t *len, const char *name) {
  bool is_ta = false;
  napi_typedarray_type type;
  size_t length;
  void *ptr;
  char msg[128];
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok || type != napi_float32_array) {
    snprintf(msg, sizeof msg, "fedseg_native: %s must be a Float32Array", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  *data = ptr;
  *len = length;
  return 1;
}

static int get_ints(napi_env env, napi_value v, int *out, uint32_t count, int min, const char *name) {
  bool is_array = false;
  uint32_t length = 0;
  char msg[160];
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, &length) != napi_ok ||
      length != count) {
    snprintf(msg, sizeof msg, "fedseg_native: %s must be an array of %u integers", name, count);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value e;
    double d;
    if (napi_get_element(env, v, i, &e) != napi_ok || napi_get_value_double(env, e, &d) != napi_ok || d != (int)d ||
        d < min || d > (1 << 30)) {
      snprintf(msg, sizeof msg, "fedseg_native: %s[%u] must be an integer >= %d", name, i, min);
      napi_throw_range_error(env, NULL, msg);
      return 0;
    }
    out[i] = (int)d;
  }
  return 1;
}

static int check_len(napi_env env, size_t len, const int *shape, const char *name) {
  size_t want = 1;
  for (int i = 0; i < 5; i++) want *= (size_t)shape[i];
  if (len != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "fedseg_native: %s has %zu elements but its shape needs %zu", name, len, want);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

enum conv_op { OP_FORWARD, OP_BACKPROP_INPUT, OP_BACKPROP_FILTER };

/* All three ops take (a, aShape, b, bShape, out, outShape, strides, pads, dilations); which tensor is
 * the activation, the gradient or the filter depends on the op. */
static napi_value conv_entry(napi_env env, napi_callback_info info, enum conv_op op) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 9) {
    napi_throw_type_error(env, NULL, "fedseg_native: conv ops take 9 arguments");
    return NULL;
  }
  float *t[3];
  size_t len[3];
  int shape[3][5];
  static const char *names[3][3] = {{"x", "filter", "y"}, {"dy", "filter", "dx"}, {"x", "dy", "dw"}};
  for (int i = 0; i < 3; i++) {
    if (!get_f32(env, argv[2 * i], &t[i], &len[i], names[op][i])) return NULL;
    if (!get_ints(env, argv[2 * i + 1], shape[i], 5, 1, names[op][i])) return NULL;
    if (!check_len(env, len[i], shape[i], names[op][i])) return NULL;
  }
  int strides[3], pads[3], dil[3];
  if (!get_ints(env, argv[6], strides, 3, 1, "strides") || !get_ints(env, argv[7], pads, 3, -(1 << 30), "pads") ||
      !get_ints(env, argv[8], dil, 3, 1, "dilations"))
    return NULL;
  const int *act_in, *act_out, *filt;
  switch (op) {
    case OP_FORWARD: act_in = shape[0]; filt = shape[1]; act_out = shape[2]; break;
    case OP_BACKPROP_INPUT: act_out = shape[0]; filt = shape[1]; act_in = shape[2]; break;
    default: act_in = shape[0]; act_out = shape[1]; filt = shape[2]; break;
  }
  if (act_in[0] != act_out[0] || act_in[4] != filt[3] || act_out[4] != filt[4]) {
    napi_throw_range_error(env, NULL,
                           "fedseg_native: shapes disagree (batch, input channels = filter dim 3, output channels = filter dim 4)");
    return NULL;
  }
  conv3d_shape s = {.batch = act_in[0], .in_d = act_in[1], .in_h = act_in[2], .in_w = act_in[3], .in_c = act_in[4],
                    .out_d = act_out[1], .out_h = act_out[2], .out_w = act_out[3], .out_c = act_out[4],
                    .k_d = filt[0], .k_h = filt[1], .k_w = filt[2]};
  for (int i = 0; i < 3; i++) {
    s.stride[i] = strides[i];
    s.pad[i] = pads[i];
    s.dil[i] = dil[i];
  }
  int rc;
  switch (op) {
    case OP_FORWARD: rc = conv3d_forward(&s, t[0], t[1], t[2]); break;
    case OP_BACKPROP_INPUT: rc = conv3d_backprop_input(&s, t[0], t[1], t[2]); break;
    default: rc = conv3d_backprop_filter(&s, t[0], t[1], t[2]); break;
  }
  if (rc != 0) {
    napi_throw_error(env, "ENOMEM", "fedseg_native: out of memory for convolution scratch buffers");
    return NULL;
  }
  return NULL;
}

static napi_value conv3d(napi_env env, napi_callback_info info) { return conv_entry(env, info, OP_FORWARD); }
static napi_value conv3d_bi(napi_env env, napi_callback_info info) { return conv_entry(env, info, OP_BACKPROP_INPUT); }
static napi_value conv3d_bf(napi_env env, napi_callback_info info) { return conv_entry(env, info, OP_BACKPROP_FILTER); }

/* Reads an integer array of any length 1..MOVEMENT_MAX_RANK into out; returns its length or 0 (thrown). */
static int get_dims(napi_env env, napi_value v, ptrdiff_t *out, int min, const char *name) {
  uint32_t length = 0;
  bool is_array = false;
  int tmp[MOVEMENT_MAX_RANK];
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, &length) != napi_ok ||
      length < 1 || length > MOVEMENT_MAX_RANK) {
    char msg[128];
    snprintf(msg, sizeof msg, "fedseg_native: %s must be an array of 1..%d integers", name, MOVEMENT_MAX_RANK);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  if (!get_ints(env, v, tmp, length, min, name)) return 0;
  for (uint32_t i = 0; i < length; i++) out[i] = tmp[i];
  return (int)length;
}

static int check_count(napi_env env, size_t len, const ptrdiff_t *dims, const ptrdiff_t *factor, int rank, const char *name) {
  size_t want = 1;
  for (int i = 0; i < rank; i++) want *= (size_t)dims[i] * (size_t)(factor ? factor[i] : 1);
  if (len != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "fedseg_native: %s has %zu elements but its shape needs %zu", name, len, want);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

static napi_value tile(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  float *x, *out;
  size_t xlen, outlen;
  ptrdiff_t shape[MOVEMENT_MAX_RANK], reps[MOVEMENT_MAX_RANK];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    napi_throw_type_error(env, NULL, "fedseg_native: tile(x, shape, reps, out)");
    return NULL;
  }
  if (!get_f32(env, argv[0], &x, &xlen, "x") || !get_f32(env, argv[3], &out, &outlen, "out")) return NULL;
  int rank = get_dims(env, argv[1], shape, 0, "shape");
  if (!rank) return NULL;
  if (get_dims(env, argv[2], reps, 1, "reps") != rank) {
    napi_throw_range_error(env, NULL, "fedseg_native: tile reps must have one entry per dimension");
    return NULL;
  }
  if (!check_count(env, xlen, shape, NULL, rank, "x") || !check_count(env, outlen, shape, reps, rank, "out")) return NULL;
  tile_f32(x, shape, reps, rank, out);
  return NULL;
}

static napi_value slice(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  float *x, *out;
  size_t xlen, outlen;
  ptrdiff_t shape[MOVEMENT_MAX_RANK], begin[MOVEMENT_MAX_RANK], size[MOVEMENT_MAX_RANK];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "fedseg_native: slice(x, shape, begin, size, out)");
    return NULL;
  }
  if (!get_f32(env, argv[0], &x, &xlen, "x") || !get_f32(env, argv[4], &out, &outlen, "out")) return NULL;
  int rank = get_dims(env, argv[1], shape, 0, "shape");
  if (!rank) return NULL;
  if (get_dims(env, argv[2], begin, 0, "begin") != rank || get_dims(env, argv[3], size, 0, "size") != rank) {
    napi_throw_range_error(env, NULL, "fedseg_native: slice begin/size must have one entry per dimension");
    return NULL;
  }
  for (int i = 0; i < rank; i++)
    if (begin[i] + size[i] > shape[i]) {
      napi_throw_range_error(env, NULL, "fedseg_native: slice runs past the end of x");
      return NULL;
    }
  if (!check_count(env, xlen, shape, NULL, rank, "x") || !check_count(env, outlen, size, NULL, rank, "out")) return NULL;
  slice_f32(x, shape, begin, size, rank, out);
  return NULL;
}

/* maxPool3d(x, xShape, y, yShape, filter, strides, pads) or
 * maxPool3dGrad(x, xShape, dy, dyShape, dx, filter, strides, pads): x/dx share xShape, y/dy yShape. */
static napi_value pool_entry(napi_env env, napi_callback_info info, int backward) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const size_t want = backward ? 8 : 7;
  if (argc != want) {
    napi_throw_type_error(env, NULL, backward ? "fedseg_native: maxPool3dGrad takes 8 arguments"
                                              : "fedseg_native: maxPool3d takes 7 arguments");
    return NULL;
  }
  float *x, *y, *dx = NULL;
  size_t xlen, ylen, dxlen = 0;
  int xs[5], ys[5], filter[3], strides[3], pads[3];
  if (!get_f32(env, argv[0], &x, &xlen, "x") || !get_ints(env, argv[1], xs, 5, 1, "xShape") ||
      !check_len(env, xlen, xs, "x") || !get_f32(env, argv[2], &y, &ylen, backward ? "dy" : "y") ||
      !get_ints(env, argv[3], ys, 5, 1, "yShape") || !check_len(env, ylen, ys, backward ? "dy" : "y"))
    return NULL;
  int p = 4;
  if (backward) {
    if (!get_f32(env, argv[4], &dx, &dxlen, "dx") || !check_len(env, dxlen, xs, "dx")) return NULL;
    p = 5;
  }
  if (!get_ints(env, argv[p], filter, 3, 1, "filter") || !get_ints(env, argv[p + 1], strides, 3, 1, "strides") ||
      !get_ints(env, argv[p + 2], pads, 3, -(1 << 30), "pads"))
    return NULL;
  if (xs[0] != ys[0] || xs[4] != ys[4]) {
    napi_throw_range_error(env, NULL, "fedseg_native: pooling keeps batch and channels");
    return NULL;
  }
  pool3d_shape s = {.batch = xs[0], .channels = xs[4], .in_d = xs[1], .in_h = xs[2], .in_w = xs[3],
                    .out_d = ys[1], .out_h = ys[2], .out_w = ys[3]};
  for (int i = 0; i < 3; i++) {
    s.filter[i] = filter[i];
    s.stride[i] = strides[i];
    s.pad[i] = pads[i];
  }
  int rc = backward ? maxpool3d_backward(&s, x, y, dx) : maxpool3d_forward(&s, x, y);
  if (rc != 0) napi_throw_error(env, "ENOMEM", "fedseg_native: out of memory for pooling scratch buffers");
  return NULL;
}

static napi_value max_pool3d(napi_env env, napi_callback_info info) { return pool_entry(env, info, 0); }
static napi_value max_pool3d_grad(napi_env env, napi_callback_info info) { return pool_entry(env, info, 1); }

static napi_value sum_rows(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  float *x, *out;
  size_t xlen, outlen;
  int dims[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    napi_throw_type_error(env, NULL, "fedseg_native: sumRows(x, rows, cols, out)");
    return NULL;
  }
  napi_value pair;
  CHECK(napi_create_array_with_length(env, 2, &pair));
  CHECK(napi_set_element(env, pair, 0, argv[1]));
  CHECK(napi_set_element(env, pair, 1, argv[2]));
  if (!get_f32(env, argv[0], &x, &xlen, "x") || !get_f32(env, argv[3], &out, &outlen, "out") ||
      !get_ints(env, pair, dims, 2, 1, "rows/cols"))
    return NULL;
  if (xlen != (size_t)dims[0] * (size_t)dims[1] || outlen != (size_t)dims[1]) {
    napi_throw_range_error(env, NULL, "fedseg_native: sumRows needs x of rows*cols and out of cols elements");
    return NULL;
  }
  if (sum_rows_f32(x, dims[0], dims[1], out) != 0)
    napi_throw_error(env, "ENOMEM", "fedseg_native: out of memory for reduction scratch");
  return NULL;
}

/* Reads a whole number in [0, 2^32) (a hash seed or threshold); 0 when it threw. */
static int get_u32(napi_env env, napi_value v, uint32_t *out, const char *name) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "fedseg_native: %s must be an integer from 0 to 2^32 - 1", name);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  *out = (uint32_t)d;
  return 1;
}

static napi_value dropout(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  float *x, *out;
  size_t xlen, outlen;
  uint32_t seed, threshold;
  double scale;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "fedseg_native: dropout(x, seed, threshold, scale, out)");
    return NULL;
  }
  if (!get_f32(env, argv[0], &x, &xlen, "x") || !get_u32(env, argv[1], &seed, "seed") ||
      !get_u32(env, argv[2], &threshold, "threshold") || !get_f32(env, argv[4], &out, &outlen, "out"))
    return NULL;
  if (napi_get_value_double(env, argv[3], &scale) != napi_ok || !(scale >= 1 && scale < 1e30)) {
    napi_throw_range_error(env, NULL, "fedseg_native: dropout scale must be a number >= 1");
    return NULL;
  }
  if (outlen != xlen) {
    napi_throw_range_error(env, NULL, "fedseg_native: dropout needs out with as many elements as x");
    return NULL;
  }
  if (xlen > 0 && (const char *)x < (const char *)(out + outlen) && (const char *)out < (const char *)(x + xlen)) {
    napi_throw_range_error(env, NULL, "fedseg_native: dropout x and out must not overlap");
    return NULL;
  }
  dropout_f32(x, (ptrdiff_t)xlen, seed, threshold, (float)scale, out);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1 || n > POOL_MAX_THREADS) {
    napi_throw_range_error(env, NULL, "fedseg_native: setThreads(n) needs an integer 1..256");
    return NULL;
  }
  pool_set_threads(n);
  return NULL;
}

static napi_value get_info(napi_env env, napi_callback_info info) {
  napi_value obj, isa, threads, version;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, gemm_kernels()->isa, NAPI_AUTO_LENGTH, &isa));
  CHECK(napi_create_int32(env, pool_get_threads(), &threads));
  CHECK(napi_create_int32(env, ADDON_VERSION, &version));
  CHECK(napi_set_named_property(env, obj, "isa", isa));
  CHECK(napi_set_named_property(env, obj, "threads", threads));
  CHECK(napi_set_named_property(env, obj, "version", version));
  return obj;
}

/*
 * Node loads this library once per process but initialises it once per environment (the main
 * thread and each worker thread that requires it), and unloads it when the last of them ends. The
 * pool's threads must not outlive that: the last environment to go stops them.
 */
static fs_mutex env_lock = FS_MUTEX_INIT;
static int live_envs;

static void env_gone(void *arg) {
  (void)arg;
  fs_mutex_lock(&env_lock);
  if (--live_envs == 0) pool_shutdown();
  fs_mutex_unlock(&env_lock);
}

NAPI_MODULE_INIT() {
  fs_mutex_lock(&env_lock);
  live_envs++;
  fs_mutex_unlock(&env_lock);
  if (napi_add_env_cleanup_hook(env, env_gone, NULL) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"conv3d", NULL, conv3d, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conv3dBackpropInput", NULL, conv3d_bi, NULL, NULL, NULL, napi_enumerable, NULL},
      {"conv3dBackpropFilter", NULL, conv3d_bf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tile", NULL, tile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"slice", NULL, slice, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxPool3d", NULL, max_pool3d, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxPool3dGrad", NULL, max_pool3d_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sumRows", NULL, sum_rows, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dropout", NULL, dropout, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"info", NULL, get_info, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
