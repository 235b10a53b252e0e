/* Implicit-GEMM 3D convolution.
 *
 * Every op is one matrix product whose left operand is a volume-to-columns ("im2col") matrix that is
 * never built whole: each thread gathers a block of at most BLOCK_FLOATS floats of it at a time into
 * its own buffer and feeds that block straight into the register-tiled micro-kernels of gemm.c.
 *   forward:         y[p, co]  = cols_x[p, (tap, ci)]  . W[(tap, ci), co]
 *   backprop-input:  dx[q, ci] = cols_dy[q, (tap, co)] . W'[(tap, co), ci]   (W' = per-tap transpose;
 *                    cols_dy gathers dy at (q + pad - tap*dil) / stride where that divides exactly)
 *   backprop-filter: dW[(tap, ci), co] = sum_p cols_x[p, (tap, ci)] * dy[p, co]
 * Direct path: where the taps along w read one contiguous run (stride-1 w gather, no dilation), the
 * rows of a line whose w taps all fall inside the volume are not gathered at all: for each valid
 * (tap_d, tap_h) the kernels read x (or dy) in place, MR output rows being evenly spaced source rows.
 * Only the rows at the w borders are gathered, batched across lines into full tiles.
 * All three hand out work dynamically (balanced when other processes share the cores) yet give results
 * that do not depend on thread count or scheduling: every output row of forward/backprop-input has one
 * writer, and backprop-filter sums fixed chunks' partial gradients in a fixed order.
 *
 * Temporary memory per call, K = k_d*k_h*k_w*channels and N' = N rounded up to the kernel width (<= 32):
 *   forward / backprop-input: packed filter K x N' + per thread one column block of
 *     max(BLOCK_FLOATS, 24 x K) floats (384 KiB for K <= 4096);
 *   backprop-filter: per thread one column block and a dy block (<= 1024 x N'), plus the chunks' partial
 *     gradients: at most max(PARTIAL_BUDGET_FLOATS (32 MiB), K x N') floats.
 * Nothing scales with the volume size: e.g. the 128^3 U-Net's largest layer (K = 6912, N = 256) needs
 * < 40 MiB. */
#include "conv3d.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "platform.h"
#include "thread_pool.h"

#define BLOCK_FLOATS (96 * 1024) /* 384 KiB of columns per block: stays in a 1-2 MiB L2 with the filter panel */
#define MAX_BLOCK_ROWS 1024

/* Which source element feeds row q, tap a, in one dimension: src = (q*qs + off + a*dil) / ds when that
 * divides exactly and lands inside [0, size). */
typedef struct {
  int size, taps, qs, off, ds, dil;
} axis_map;

typedef struct {
  int batch, grid_d, grid_h, grid_w; /* rows of the product: batch x grid */
  int channels;                       /* contiguous channels per source position */
  axis_map ax[3];                     /* d, h, w */
  const float *src;                   /* [batch][ax0.size][ax1.size][ax2.size][channels] */
} gather_spec;

static ptrdiff_t spec_k(const gather_spec *g) {
  return (ptrdiff_t)g->ax[0].taps * g->ax[1].taps * g->ax[2].taps * g->channels;
}

/* True when row q of the product is exactly source position q (1x1x1, stride 1, no padding). */
static int spec_is_identity(const gather_spec *g) {
  for (int i = 0; i < 3; i++) {
    const axis_map *a = &g->ax[i];
    if (a->taps != 1 || a->qs != 1 || a->off != 0 || a->ds != 1) return 0;
  }
  return g->grid_d == g->ax[0].size && g->grid_h == g->ax[1].size && g->grid_w == g->ax[2].size;
}

static inline int axis_source(const axis_map *a, int q, int tap) {
  int num = q * a->qs + a->off + tap * a->dil;
  if (num < 0) return -1;
  if (a->ds != 1) {
    if (num % a->ds) return -1;
    num /= a->ds;
  }
  return num < a->size ? num : -1;
}

/* Writes rows [m0, m0 + rows) of the column matrix into buf (row-major, K floats per row). */
static void gather_rows(const gather_spec *g, ptrdiff_t m0, ptrdiff_t rows, float *buf) {
  const axis_map *ad = &g->ax[0], *ah = &g->ax[1], *aw = &g->ax[2];
  const int c = g->channels;
  const ptrdiff_t k = spec_k(g);
  const ptrdiff_t plane_w = (ptrdiff_t)aw->taps * c; /* floats per (tap_d, tap_h) run */
  const int contiguous_w = aw->ds == 1 && aw->dil == 1;
  ptrdiff_t m = m0;
  int x = (int)(m % g->grid_w);
  ptrdiff_t t = m / g->grid_w;
  int y = (int)(t % g->grid_h);
  t /= g->grid_h;
  int z = (int)(t % g->grid_d);
  int n = (int)(t / g->grid_d);
  for (ptrdiff_t r = 0; r < rows; r++) {
    float *out = buf + r * k;
    const float *batch_base = g->src + (ptrdiff_t)n * ad->size * ah->size * aw->size * c;
    for (int a = 0; a < ad->taps; a++) {
      int sz = axis_source(ad, z, a);
      for (int b = 0; b < ah->taps; b++, out += plane_w) {
        int sy = sz < 0 ? -1 : axis_source(ah, y, b);
        if (sy < 0) {
          memset(out, 0, sizeof(float) * (size_t)plane_w);
          continue;
        }
        const float *line = batch_base + ((ptrdiff_t)sz * ah->size + sy) * aw->size * c;
        if (contiguous_w) {
          int base = x * aw->qs + aw->off; /* source w of tap 0; tap i reads base + i */
          int lo = base < 0 ? -base : 0;
          int hi = aw->size - base;
          if (hi > aw->taps) hi = aw->taps;
          if (hi < lo) hi = lo;
          if (lo > 0) memset(out, 0, sizeof(float) * (size_t)lo * c);
          if (hi > lo) memcpy(out + (ptrdiff_t)lo * c, line + (ptrdiff_t)(base + lo) * c, sizeof(float) * (size_t)(hi - lo) * c);
          if (hi < aw->taps) memset(out + (ptrdiff_t)hi * c, 0, sizeof(float) * (size_t)(aw->taps - hi) * c);
        } else {
          for (int i = 0; i < aw->taps; i++) {
            int sx = axis_source(aw, x, i);
            if (sx < 0)
              memset(out + (ptrdiff_t)i * c, 0, sizeof(float) * (size_t)c);
            else
              memcpy(out + (ptrdiff_t)i * c, line + (ptrdiff_t)sx * c, sizeof(float) * (size_t)c);
          }
        }
      }
    }
    if (++x == g->grid_w) {
      x = 0;
      if (++y == g->grid_h) {
        y = 0;
        if (++z == g->grid_d) {
          z = 0;
          n++;
        }
      }
    }
  }
}

static ptrdiff_t rows_total(const gather_spec *g) { return (ptrdiff_t)g->batch * g->grid_d * g->grid_h * g->grid_w; }

static ptrdiff_t block_rows(ptrdiff_t k, int mr) {
  ptrdiff_t rows = BLOCK_FLOATS / k;
  rows -= rows % mr;
  if (rows < mr) rows = mr;
  if (rows > MAX_BLOCK_ROWS) rows = MAX_BLOCK_ROWS - MAX_BLOCK_ROWS % mr;
  return rows;
}

/* 64-byte aligned; release with fs_aligned_free. */
static float *alloc_floats(size_t n) { return fs_aligned_alloc(sizeof(float) * n); }

/* ---- row products: forward and backprop-input ---- */

typedef struct {
  const gather_spec *g;
  const micro_kernel *mk;
  const float *packed; /* [panel][K][nr], zero-padded past N */
  float *out;          /* [rows][n] */
  ptrdiff_t k, m, mc, lines;
  int n;
  fs_atomic next_block; /* gathered mode: blocks of mc rows; direct mode: units of LINES_PER_UNIT lines */
  fs_atomic failed;
} rows_job;

#define LINES_PER_UNIT 4

/* Direct (gather-free) mode applies when the taps along w read contiguous source runs: then a tile of MR
 * consecutive output rows of one line reads, for each (tap_d, tap_h), MR rows of x that are evenly spaced
 * (qs * channels apart), which the segment kernel consumes in place. */
static int spec_is_direct(const gather_spec *g) {
  const axis_map *aw = &g->ax[2];
  return !spec_is_identity(g) && aw->ds == 1 && aw->dil == 1 && (ptrdiff_t)aw->taps * g->channels >= 8;
}

static void store_rows(const float *tile, int nr, const ptrdiff_t *rows, int count, int cols, float *out, int n,
                       ptrdiff_t col0) {
  for (int r = 0; r < count; r++) memcpy(out + rows[r] * n + col0, tile + (ptrdiff_t)r * nr, sizeof(float) * (size_t)cols);
}

/* Gathers the listed rows into buf and multiplies them (used for rows the direct path cannot take). */
static void flush_rows(const rows_job *j, const ptrdiff_t *rows, int count, float *buf) {
  const int mr = j->mk->mr, nr = j->mk->nr;
  const int panels = (j->n + nr - 1) / nr;
  float tile[GEMM_MAX_MR * GEMM_MAX_NR];
  if (count == 0) return;
  for (int i = 0; i < count; i++) gather_rows(j->g, rows[i], 1, buf + (ptrdiff_t)i * j->k);
  ptrdiff_t padded = (count + mr - 1) / mr * mr;
  memset(buf + count * j->k, 0, sizeof(float) * (size_t)((padded - count) * j->k));
  for (int p = 0; p < panels; p++) {
    const float *b = j->packed + (ptrdiff_t)p * j->k * nr;
    int cols = j->n - p * nr < nr ? j->n - p * nr : nr;
    for (int r0 = 0; r0 < count; r0 += mr) {
      j->mk->fn(j->k, buf + (ptrdiff_t)r0 * j->k, j->k, 1, b, nr, tile, nr, 0);
      store_rows(tile, nr, rows + r0, count - r0 < mr ? count - r0 : mr, cols, j->out, j->n, (ptrdiff_t)p * nr);
    }
  }
}

static void direct_worker(rows_job *j, float *buf) {
  const gather_spec *g = j->g;
  const axis_map *ad = &g->ax[0], *ah = &g->ax[1], *aw = &g->ax[2];
  const int mr = j->mk->mr, nr = j->mk->nr, c = g->channels;
  const int panels = (j->n + nr - 1) / nr;
  const ptrdiff_t seg_len = (ptrdiff_t)aw->taps * c;
  const int max_seg = ad->taps * ah->taps;
  float tile[GEMM_MAX_MR * GEMM_MAX_NR];
  ptrdiff_t *pending = malloc(sizeof(ptrdiff_t) * (size_t)j->mc);
  const float **seg_src = malloc(sizeof(float *) * (size_t)max_seg * 3);
  ptrdiff_t *seg_index = malloc(sizeof(ptrdiff_t) * (size_t)max_seg);
  if (!pending || !seg_src || !seg_index) {
    fs_atomic_store(&j->failed, 1);
    goto done;
  }
  const float **aptr = seg_src + max_seg, **bptr = seg_src + 2 * max_seg;
  int npending = 0;
  /* Output columns x whose w taps all land inside the source: base = x*qs + off in [0, size - taps]. */
  int x_lo = aw->off >= 0 ? 0 : (-aw->off + aw->qs - 1) / aw->qs;
  int x_hi = aw->size - aw->taps - aw->off < 0 ? 0 : (aw->size - aw->taps - aw->off) / aw->qs + 1;
  if (x_hi > g->grid_w) x_hi = g->grid_w;
  if (x_lo > x_hi) x_lo = x_hi;
  const int full_end = x_lo + (x_hi - x_lo) / mr * mr;
  const float *src_end = g->src + (ptrdiff_t)g->batch * ad->size * ah->size * aw->size * c;
  for (;;) {
    ptrdiff_t l0 = fs_atomic_fetch_add(&j->next_block, LINES_PER_UNIT);
    if (l0 >= j->lines) break;
    ptrdiff_t l1 = l0 + LINES_PER_UNIT < j->lines ? l0 + LINES_PER_UNIT : j->lines;
    for (ptrdiff_t line = l0; line < l1; line++) {
      int y = (int)(line % g->grid_h);
      ptrdiff_t t = line / g->grid_h;
      int z = (int)(t % g->grid_d);
      int n = (int)(t / g->grid_d);
      ptrdiff_t m_line = line * g->grid_w;
      int nseg = 0;
      for (int a = 0; a < ad->taps; a++) {
        int sz = axis_source(ad, z, a);
        for (int b = 0; sz >= 0 && b < ah->taps; b++) {
          int sy = axis_source(ah, y, b);
          if (sy < 0) continue;
          seg_src[nseg] = g->src + (((ptrdiff_t)n * ad->size + sz) * ah->size + sy) * aw->size * c;
          seg_index[nseg++] = (ptrdiff_t)a * ah->taps + b;
        }
      }
      if (nseg == 0) { /* every tap reads padding: the rows are zero */
        memset(j->out + m_line * j->n, 0, sizeof(float) * (size_t)g->grid_w * j->n);
        continue;
      }
      for (int x = x_lo; x < full_end; x += mr) {
        ptrdiff_t base = ((ptrdiff_t)x * aw->qs + aw->off) * c;
        for (int s = 0; s < nseg; s++) aptr[s] = seg_src[s] + base;
        for (int p = 0; p < panels; p++) {
          const float *panel = j->packed + (ptrdiff_t)p * j->k * nr;
          for (int s = 0; s < nseg; s++) bptr[s] = panel + seg_index[s] * seg_len * nr;
          int cols = j->n - p * nr < nr ? j->n - p * nr : nr;
          float *dst = j->out + (m_line + x) * j->n + (ptrdiff_t)p * nr;
          if (cols == nr) {
            j->mk->seg(nseg, aptr, bptr, seg_len, (ptrdiff_t)aw->qs * c, nr, dst, j->n);
          } else {
            j->mk->seg(nseg, aptr, bptr, seg_len, (ptrdiff_t)aw->qs * c, nr, tile, nr);
            for (int r = 0; r < mr; r++) memcpy(dst + (ptrdiff_t)r * j->n, tile + r * nr, sizeof(float) * (size_t)cols);
          }
        }
      }
      /* Interior rows that do not fill a tile: one tile whose extra rows read (in-bounds) memory past the
       * interior and are discarded, provided no segment's read runs off the end of the source. */
      int direct_end = full_end;
      if (x_hi > full_end) {
        ptrdiff_t base = ((ptrdiff_t)full_end * aw->qs + aw->off) * c;
        ptrdiff_t reach = base + (ptrdiff_t)(mr - 1) * aw->qs * c + seg_len;
        int safe = 1;
        for (int s = 0; s < nseg; s++) safe &= seg_src[s] + reach <= src_end;
        if (safe) {
          for (int s = 0; s < nseg; s++) aptr[s] = seg_src[s] + base;
          for (int p = 0; p < panels; p++) {
            const float *panel = j->packed + (ptrdiff_t)p * j->k * nr;
            for (int s = 0; s < nseg; s++) bptr[s] = panel + seg_index[s] * seg_len * nr;
            int cols = j->n - p * nr < nr ? j->n - p * nr : nr;
            float *dst = j->out + (m_line + full_end) * j->n + (ptrdiff_t)p * nr;
            j->mk->seg(nseg, aptr, bptr, seg_len, (ptrdiff_t)aw->qs * c, nr, tile, nr);
            for (int r = 0; r < x_hi - full_end; r++)
              memcpy(dst + (ptrdiff_t)r * j->n, tile + r * nr, sizeof(float) * (size_t)cols);
          }
          direct_end = x_hi;
        }
      }
      /* Rows at the w borders (and a tail the direct path could not take): gathered, batched across lines. */
      for (int x = 0; x < g->grid_w; x++) {
        if (x == x_lo && x < direct_end) x = direct_end;
        if (x >= g->grid_w) break;
        pending[npending++] = m_line + x;
        if (npending == j->mc) {
          flush_rows(j, pending, npending, buf);
          npending = 0;
        }
      }
    }
  }
  flush_rows(j, pending, npending, buf);
done:
  free(pending);
  free(seg_src);
  free(seg_index);
}

static void rows_worker(void *ctx, int ti, int tc) {
  rows_job *j = ctx;
  const int mr = j->mk->mr, nr = j->mk->nr;
  const int panels = (j->n + nr - 1) / nr;
  const int identity = spec_is_identity(j->g);
  float *buf = alloc_floats((size_t)(j->mc + mr) * j->k);
  if (!buf) {
    fs_atomic_store(&j->failed, 1);
    return;
  }
  if (spec_is_direct(j->g)) {
    direct_worker(j, buf);
    fs_aligned_free(buf);
    return;
  }
  for (;;) {
    ptrdiff_t blk = fs_atomic_fetch_add(&j->next_block, 1);
    ptrdiff_t m0 = blk * j->mc;
    if (m0 >= j->m) break;
    ptrdiff_t rows = j->m - m0 < j->mc ? j->m - m0 : j->mc;
    const float *a;
    if (identity && rows % mr == 0) {
      a = j->g->src + m0 * j->k;
    } else {
      gather_rows(j->g, m0, rows, buf);
      ptrdiff_t padded = (rows + mr - 1) / mr * mr;
      memset(buf + rows * j->k, 0, sizeof(float) * (size_t)((padded - rows) * j->k));
      a = buf;
    }
    for (int p = 0; p < panels; p++) {
      const float *b = j->packed + (ptrdiff_t)p * j->k * nr;
      int cols = j->n - p * nr < nr ? j->n - p * nr : nr;
      for (ptrdiff_t r0 = 0; r0 < rows; r0 += mr) {
        float *c = j->out + (m0 + r0) * j->n + (ptrdiff_t)p * nr;
        int rcount = rows - r0 < mr ? (int)(rows - r0) : mr;
        if (rcount == mr && cols == nr)
          j->mk->fn(j->k, a + r0 * j->k, j->k, 1, b, nr, c, j->n, 0);
        else
          gemm_edge_tile(j->mk, j->k, a + r0 * j->k, j->k, 1, b, nr, c, j->n, 0, rcount, cols);
      }
    }
  }
  fs_aligned_free(buf);
  (void)ti;
  (void)tc;
}

static int run_rows(const gather_spec *g, const float *packed, const micro_kernel *mk, int n, float *out) {
  rows_job j = {.g = g, .mk = mk, .packed = packed, .out = out, .k = spec_k(g), .m = rows_total(g), .n = n};
  j.mc = block_rows(j.k, mk->mr);
  j.lines = (ptrdiff_t)g->batch * g->grid_d * g->grid_h;
  fs_atomic_store(&j.next_block, 0);
  fs_atomic_store(&j.failed, 0);
  pool_run(rows_worker, &j);
  return fs_atomic_load(&j.failed) ? -1 : 0;
}

/* Packs B[k][n] = source(k, n) into panels of nr columns, zero-padded. */
static float *pack_panels(ptrdiff_t k, int n, int nr, const float *w, ptrdiff_t (*index)(const conv3d_shape *, ptrdiff_t, int),
                          const conv3d_shape *s) {
  int panels = (n + nr - 1) / nr;
  float *p = alloc_floats((size_t)panels * k * nr);
  if (!p) return NULL;
  for (int pi = 0; pi < panels; pi++)
    for (ptrdiff_t kk = 0; kk < k; kk++) {
      float *dst = p + ((ptrdiff_t)pi * k + kk) * nr;
      for (int jj = 0; jj < nr; jj++) {
        int col = pi * nr + jj;
        dst[jj] = col < n ? w[index(s, kk, col)] : 0.0f;
      }
    }
  return p;
}

/* forward: B[(tap, ci)][co] is the DHWIO filter itself */
static ptrdiff_t forward_index(const conv3d_shape *s, ptrdiff_t kk, int co) { return kk * s->out_c + co; }

/* backprop-input: B[(tap, co)][ci] = W[last - tap][ci][co]: taps run backwards, see conv3d_backprop_input */
static ptrdiff_t backprop_input_index(const conv3d_shape *s, ptrdiff_t kk, int ci) {
  ptrdiff_t tap = (ptrdiff_t)s->k_d * s->k_h * s->k_w - 1 - kk / s->out_c;
  int co = (int)(kk % s->out_c);
  return (tap * s->in_c + ci) * s->out_c + co;
}

static void x_spec(const conv3d_shape *s, const float *x, gather_spec *g) {
  int in_size[3] = {s->in_d, s->in_h, s->in_w};
  int taps[3] = {s->k_d, s->k_h, s->k_w};
  g->batch = s->batch;
  g->grid_d = s->out_d;
  g->grid_h = s->out_h;
  g->grid_w = s->out_w;
  g->channels = s->in_c;
  g->src = x;
  for (int i = 0; i < 3; i++)
    g->ax[i] = (axis_map){.size = in_size[i], .taps = taps[i], .qs = s->stride[i], .off = -s->pad[i], .ds = 1,
                          .dil = s->dil[i]};
}

int conv3d_forward(const conv3d_shape *s, const float *x, const float *w, float *y) {
  gather_spec g;
  x_spec(s, x, &g);
  const micro_kernel *mk = gemm_pick(s->out_c);
  float *packed = pack_panels(spec_k(&g), s->out_c, mk->nr, w, forward_index, s);
  if (!packed) return -1;
  int rc = run_rows(&g, packed, mk, s->out_c, y);
  fs_aligned_free(packed);
  return rc;
}

int conv3d_backprop_input(const conv3d_shape *s, const float *dy, const float *w, float *dx) {
  int out_size[3] = {s->out_d, s->out_h, s->out_w};
  int taps[3] = {s->k_d, s->k_h, s->k_w};
  gather_spec g = {.batch = s->batch, .grid_d = s->in_d, .grid_h = s->in_h, .grid_w = s->in_w, .channels = s->out_c,
                   .src = dy};
  for (int i = 0; i < 3; i++)
    g.ax[i] = (axis_map){.size = out_size[i], .taps = taps[i], .qs = 1,
                         .off = s->pad[i] - (taps[i] - 1) * s->dil[i], .ds = s->stride[i], .dil = s->dil[i]};
  /* Gathered tap i stands for filter tap (k-1-i) in every dimension: dx[q] takes dy[o] where
   * o*stride = q + pad - (k-1-i)*dil. Running the taps backwards makes source positions ascend, so at
   * stride 1 / dilation 1 (the flipped-filter convolution) the gather copies whole contiguous runs. */
  const micro_kernel *mk = gemm_pick(s->in_c);
  float *packed = pack_panels(spec_k(&g), s->in_c, mk->nr, w, backprop_input_index, s);
  if (!packed) return -1;
  int rc = run_rows(&g, packed, mk, s->in_c, dx);
  fs_aligned_free(packed);
  return rc;
}

/* ---- backprop-filter ----
 * Rows are cut into `chunks` fixed, contiguous ranges, each with its own K x np partial gradient; threads
 * take chunks dynamically (balanced on a shared machine) and the partials are summed in chunk order, so
 * the result is bit-identical whatever the thread count or scheduling. */

#define PARTIAL_BUDGET_FLOATS (8L * 1024 * 1024) /* 32 MiB of partial gradients in all */
#define MAX_CHUNKS 32

typedef struct {
  const gather_spec *g;
  const micro_kernel *mk;
  const float *dy; /* [rows][n] */
  float **partials; /* per chunk [K][np] */
  ptrdiff_t k, m, mc, blocks;
  int n, np, chunks;
  fs_atomic next_chunk;
  fs_atomic failed;
} filter_job;

static void filter_chunk(filter_job *j, int chunk, float *buf, float *dyp, float *partial) {
  const int mr = j->mk->mr, nr = j->mk->nr;
  const int panels = j->np / nr;
  const int identity = spec_is_identity(j->g);
  const int dy_direct = j->n == j->np;
  ptrdiff_t first = j->blocks * chunk / j->chunks, last = j->blocks * (chunk + 1) / j->chunks;
  for (ptrdiff_t blk = first; blk < last; blk++) {
    ptrdiff_t m0 = blk * j->mc;
    ptrdiff_t rows = j->m - m0 < j->mc ? j->m - m0 : j->mc;
    const float *a;
    if (identity && (m0 + rows < j->m || j->k % mr == 0)) {
      a = j->g->src + m0 * j->k;
    } else {
      gather_rows(j->g, m0, rows, buf);
      a = buf;
    }
    const float *b;
    if (dy_direct) {
      b = j->dy + m0 * j->n;
    } else {
      for (ptrdiff_t r = 0; r < rows; r++) {
        memcpy(dyp + r * j->np, j->dy + (m0 + r) * j->n, sizeof(float) * (size_t)j->n);
        memset(dyp + r * j->np + j->n, 0, sizeof(float) * (size_t)(j->np - j->n));
      }
      b = dyp;
    }
    for (ptrdiff_t k0 = 0; k0 < j->k; k0 += mr) {
      int rcount = j->k - k0 < mr ? (int)(j->k - k0) : mr;
      for (int p = 0; p < panels; p++) {
        float *c = partial + k0 * j->np + (ptrdiff_t)p * nr;
        if (rcount == mr)
          j->mk->fn(rows, a + k0, 1, j->k, b + (ptrdiff_t)p * nr, j->np, c, j->np, 1);
        else
          gemm_edge_tile(j->mk, rows, a + k0, 1, j->k, b + (ptrdiff_t)p * nr, j->np, c, j->np, 1, rcount, nr);
      }
    }
  }
}

/* Border rows of the direct path: gathered x rows and their dy rows, accumulated like a gathered block. */
static void filter_flush(filter_job *j, const ptrdiff_t *rows, int count, float *buf, float *dyp, float *partial) {
  const int mr = j->mk->mr, nr = j->mk->nr;
  const int panels = j->np / nr;
  if (count == 0) return;
  for (int i = 0; i < count; i++) {
    gather_rows(j->g, rows[i], 1, buf + (ptrdiff_t)i * j->k);
    memcpy(dyp + (ptrdiff_t)i * j->np, j->dy + rows[i] * j->n, sizeof(float) * (size_t)j->n);
  }
  for (ptrdiff_t k0 = 0; k0 < j->k; k0 += mr) {
    int rcount = j->k - k0 < mr ? (int)(j->k - k0) : mr;
    for (int p = 0; p < panels; p++) {
      float *c = partial + k0 * j->np + (ptrdiff_t)p * nr;
      if (rcount == mr)
        j->mk->fn(count, buf + k0, 1, j->k, dyp + (ptrdiff_t)p * nr, j->np, c, j->np, 1);
      else
        gemm_edge_tile(j->mk, count, buf + k0, 1, j->k, dyp + (ptrdiff_t)p * nr, j->np, c, j->np, 1, rcount, nr);
    }
  }
}

/* Gather-free backprop-filter over one chunk of lines (same geometry condition as the forward direct
 * path, and N a multiple of the kernel width): for each valid (tap_d, tap_h) segment, the K rows of
 * that segment read x in place, the reduction runs along the line's interior rows. */
static int filter_chunk_direct(filter_job *j, int chunk, float *buf, float *dyp, float *partial) {
  const gather_spec *g = j->g;
  const axis_map *ad = &g->ax[0], *ah = &g->ax[1], *aw = &g->ax[2];
  const int mr = j->mk->mr, nr = j->mk->nr, c = g->channels;
  const int panels = j->np / nr;
  const ptrdiff_t seg_len = (ptrdiff_t)aw->taps * c;
  const ptrdiff_t lines = (ptrdiff_t)g->batch * g->grid_d * g->grid_h;
  const float *src_end = g->src + (ptrdiff_t)g->batch * ad->size * ah->size * aw->size * c;
  const int max_seg = ad->taps * ah->taps;
  ptrdiff_t *pending = malloc(sizeof(ptrdiff_t) * (size_t)j->mc);
  const float **seg_src = malloc(sizeof(float *) * (size_t)max_seg);
  ptrdiff_t *seg_k = malloc(sizeof(ptrdiff_t) * (size_t)max_seg);
  if (!pending || !seg_src || !seg_k) {
    free(pending);
    free(seg_src);
    free(seg_k);
    return -1;
  }
  int npending = 0;
  int x_lo = aw->off >= 0 ? 0 : (-aw->off + aw->qs - 1) / aw->qs;
  int x_hi = aw->size - aw->taps - aw->off < 0 ? 0 : (aw->size - aw->taps - aw->off) / aw->qs + 1;
  if (x_hi > g->grid_w) x_hi = g->grid_w;
  if (x_lo > x_hi) x_lo = x_hi;
  const ptrdiff_t step = (ptrdiff_t)aw->qs * c;
  ptrdiff_t first = lines * chunk / j->chunks, last = lines * (chunk + 1) / j->chunks;
  for (ptrdiff_t line = first; line < last; line++) {
    int y = (int)(line % g->grid_h);
    ptrdiff_t t = line / g->grid_h;
    int z = (int)(t % g->grid_d);
    int n = (int)(t / g->grid_d);
    ptrdiff_t m_line = line * g->grid_w;
    int direct_lo = x_lo, direct_hi = x_hi;
    int nseg = 0;
    for (int a = 0; a < ad->taps; a++) {
      int sz = axis_source(ad, z, a);
      for (int b = 0; sz >= 0 && b < ah->taps; b++) {
        int sy = axis_source(ah, y, b);
        if (sy < 0) continue;
        seg_src[nseg] = g->src + (((ptrdiff_t)n * ad->size + sz) * ah->size + sy) * aw->size * c +
                        ((ptrdiff_t)direct_lo * aw->qs + aw->off) * c;
        seg_k[nseg] = ((ptrdiff_t)a * ah->taps + b) * seg_len;
        /* Edge k-groups read up to mr - 1 floats past the segment: all reads must stay in the source,
         * else the whole line goes the gathered way. */
        if (seg_src[nseg] + (ptrdiff_t)(direct_hi - direct_lo - 1) * step + (seg_len + mr - 1) / mr * mr > src_end)
          direct_hi = direct_lo;
        nseg++;
      }
    }
    const ptrdiff_t rows = direct_hi - direct_lo;
    const float *dyl = j->dy + (m_line + direct_lo) * j->n;
    for (int s = 0; rows > 0 && s < nseg; s++) {
      for (ptrdiff_t k0 = 0; k0 < seg_len; k0 += mr) {
        int rcount = seg_len - k0 < mr ? (int)(seg_len - k0) : mr;
        for (int p = 0; p < panels; p++) {
          float *cp = partial + (seg_k[s] + k0) * j->np + (ptrdiff_t)p * nr;
          if (rcount == mr)
            j->mk->fn(rows, seg_src[s] + k0, 1, step, dyl + (ptrdiff_t)p * nr, j->n, cp, j->np, 1);
          else
            gemm_edge_tile(j->mk, rows, seg_src[s] + k0, 1, step, dyl + (ptrdiff_t)p * nr, j->n, cp, j->np, 1, rcount, nr);
        }
      }
    }
    for (int x = 0; x < g->grid_w; x++) {
      if (x == direct_lo && direct_hi > direct_lo) x = direct_hi;
      if (x >= g->grid_w) break;
      pending[npending++] = m_line + x;
      if (npending == j->mc) {
        filter_flush(j, pending, npending, buf, dyp, partial);
        npending = 0;
      }
    }
  }
  filter_flush(j, pending, npending, buf, dyp, partial);
  free(pending);
  free(seg_src);
  free(seg_k);
  return 0;
}

static void filter_worker(void *ctx, int ti, int tc) {
  filter_job *j = ctx;
  /* Extra mr floats: edge tiles read (but discard) up to mr - 1 columns past the last row. */
  float *buf = alloc_floats((size_t)j->mc * j->k + j->mk->mr);
  float *dyp = alloc_floats((size_t)j->mc * j->np);
  const int direct = spec_is_direct(j->g) && j->n == j->np;
  if (!buf || !dyp) {
    fs_atomic_store(&j->failed, 1);
  } else {
    for (;;) {
      int chunk = fs_atomic_fetch_add(&j->next_chunk, 1);
      if (chunk >= j->chunks) break;
      float *partial = alloc_floats((size_t)j->k * j->np);
      if (!partial) {
        fs_atomic_store(&j->failed, 1);
        break;
      }
      memset(partial, 0, sizeof(float) * (size_t)j->k * j->np);
      j->partials[chunk] = partial;
      if (direct) {
        if (filter_chunk_direct(j, chunk, buf, dyp, partial) != 0) {
          fs_atomic_store(&j->failed, 1);
          break;
        }
      } else {
        filter_chunk(j, chunk, buf, dyp, partial);
      }
    }
  }
  fs_aligned_free(buf);
  fs_aligned_free(dyp);
  (void)ti;
  (void)tc;
}

typedef struct {
  filter_job *j;
  float *dw;
  fs_atomic next_row;
} reduce_job;

/* dw[kk][c] = sum over chunks in order: rows of dw are shared out, each summed by one thread. */
static void reduce_worker(void *ctx, int ti, int tc) {
  reduce_job *r = ctx;
  const filter_job *j = r->j;
  const ptrdiff_t step = 64;
  for (;;) {
    ptrdiff_t k0 = fs_atomic_fetch_add(&r->next_row, step);
    if (k0 >= j->k) break;
    ptrdiff_t k1 = k0 + step < j->k ? k0 + step : j->k;
    for (ptrdiff_t kk = k0; kk < k1; kk++) {
      float *out = r->dw + kk * j->n;
      memcpy(out, j->partials[0] + kk * j->np, sizeof(float) * (size_t)j->n);
      for (int c = 1; c < j->chunks; c++) {
        const float *p = j->partials[c] + kk * j->np;
        for (int i = 0; i < j->n; i++) out[i] += p[i];
      }
    }
  }
  (void)ti;
  (void)tc;
}

int conv3d_backprop_filter(const conv3d_shape *s, const float *x, const float *dy, float *dw) {
  gather_spec g;
  x_spec(s, x, &g);
  const micro_kernel *mk = gemm_pick(s->out_c);
  float *partials[MAX_CHUNKS] = {0};
  filter_job j = {.g = &g, .mk = mk, .dy = dy, .partials = partials, .k = spec_k(&g), .m = rows_total(&g),
                  .n = s->out_c};
  j.np = (s->out_c + mk->nr - 1) / mk->nr * mk->nr;
  j.mc = block_rows(j.k, mk->mr);
  j.blocks = (j.m + j.mc - 1) / j.mc;
  /* A fixed chunk count (not the thread count) keeps the summation order independent of threads. */
  ptrdiff_t fit = PARTIAL_BUDGET_FLOATS / (j.k * j.np);
  j.chunks = (int)(fit < 1 ? 1 : fit > MAX_CHUNKS ? MAX_CHUNKS : fit);
  ptrdiff_t units = spec_is_direct(&g) && j.n == j.np ? (ptrdiff_t)g.batch * g.grid_d * g.grid_h : j.blocks;
  if (j.chunks > units) j.chunks = (int)units;
  if (j.chunks < 1) j.chunks = 1;
  fs_atomic_store(&j.next_chunk, 0);
  fs_atomic_store(&j.failed, 0);
  pool_run(filter_worker, &j);
  int rc = fs_atomic_load(&j.failed) ? -1 : 0;
  if (rc == 0) {
    reduce_job r = {.j = &j, .dw = dw};
    fs_atomic_store(&r.next_row, 0);
    pool_run(reduce_worker, &r);
  }
  for (int c = 0; c < MAX_CHUNKS; c++) fs_aligned_free(partials[c]);
  return rc;
}
