/* Host-side conversion between the element's video formats and the packed RGBA8 frames
 * libctsr takes. One function per direction; YUV uses an affine matrix built from the
 * stream's colorimetry (Kr/Kb table, limited or full range) and its chroma siting.
 *
 * The element converts I420 and NV12 in libctsr's shaders (ctsr_process_yuv) where the
 * device supports it; this host path is the fallback. */
#ifndef GST_CTSR_CONVERT_H
#define GST_CTSR_CONVERT_H

#include <gst/video/video.h>

G_BEGIN_DECLS

/* 16.16 fixed-point affine map: out[i] = (m[i][0] a + m[i][1] b + m[i][2] c + m[i][3]) >> 16 */
typedef struct {
  gint32 m[3][4];
} GstCtsrMatrix;

typedef struct {
  GstVideoFormat format;
  gboolean is_yuv;
  /* the frame's plane 0 is already RGBA8 (RGBA, RGBx): libctsr reads/writes it directly */
  gboolean direct;
  gboolean has_alpha;
  /* YUV only */
  GstCtsrMatrix to_rgb;         /* Y'CbCr (codes) -> R'G'B' (0..255) */
  GstCtsrMatrix to_yuv;         /* R'G'B' (0..255) -> Y'CbCr (codes) */
  gboolean h_cosited, v_cosited; /* chroma siting; otherwise centred between luma samples */
  guint8 black[3];              /* Y, Cb, Cr of black */
  gdouble kr, kb;               /* luma coefficients of the matrix */
  gboolean full_range;
} GstCtsrConvert;

/* Sets up the conversion for one side of the element. FALSE for an unsupported format. */
gboolean gst_ctsr_convert_init (GstCtsrConvert * conv, const GstVideoInfo * info);

/* frame -> packed RGBA8 (frame width x height, rows of rgba_stride bytes). Alpha is 255
 * where the format has none. Chroma is upsampled bilinearly according to the siting. */
void gst_ctsr_convert_to_rgba (const GstCtsrConvert * conv, const GstVideoFrame * frame,
    guint8 * rgba, gsize rgba_stride);

/* packed RGBA8 -> frame. Chroma is computed at the chroma resolution by averaging the
 * co-located RGB pixels (2x2 box for centred siting, 1-2-1 taps along a cosited axis). */
void gst_ctsr_convert_from_rgba (const GstCtsrConvert * conv, const guint8 * rgba,
    gsize rgba_stride, GstVideoFrame * frame);

/* Fills the frame with opaque black (used for gap buffers). */
void gst_ctsr_convert_fill_black (const GstCtsrConvert * conv, GstVideoFrame * frame);

G_END_DECLS

#endif
