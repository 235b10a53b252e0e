/* conv3d forward / backprop-input / backprop-filter for NDHWC activations and DHWIO filters, float32.
 * Shapes are trusted here: addon.c checks every buffer length against its shape first. */
#ifndef FEDSEG_CONV3D_H
#define FEDSEG_CONV3D_H

typedef struct {
  int batch;
  int in_d, in_h, in_w, in_c;    /* x / dx */
  int out_d, out_h, out_w, out_c; /* y / dy */
  int k_d, k_h, k_w;              /* filter taps; filter is [k_d][k_h][k_w][in_c][out_c] */
  int stride[3], pad[3], dil[3];  /* pad = padding before (front, top, left) */
} conv3d_shape;

/* Returns 0, or -1 when temporary memory could not be allocated (outputs then undefined). */
int conv3d_forward(const conv3d_shape *s, const float *x, const float *w, float *y);
int conv3d_backprop_input(const conv3d_shape *s, const float *dy, const float *w, float *dx);
int conv3d_backprop_filter(const conv3d_shape *s, const float *x, const float *dy, float *dw);

#endif
