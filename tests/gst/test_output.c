/* ctsrupscale: output correctness. RGBA equals libctsr's ctsr_process_rgba8 on the same
 * frame; the other RGB formats equal it after the swizzle; I420 and NV12 agree with it after
 * colour conversion within the tolerances below; strides (video meta), gap buffers,
 * navigation events. */
#include <stdlib.h>
#include <string.h>

#include <gst/video/navigation.h>

#include "ctsrtest.h"

/* YUV paths vs the RGBA path (per plane, code values): see test_yuv_matches_rgba */
#define YUV_MEAN_TOLERANCE 1.0
#define YUV_MAX_TOLERANCE 4

static GstBuffer *
run_one (const gchar * caps, const guint8 * rgba, gint stride_pad, gdouble t,
    GstVideoInfo * in_info, GstVideoInfo * out_info)
{
  GstHarness *h = ct_harness_new (caps);
  GstCaps *c = gst_caps_from_string (caps);
  GstBuffer *out;

  fail_unless (gst_video_info_from_caps (in_info, c));
  gst_caps_unref (c);
  g_object_set (h->element, "timestep", t, NULL);
  out = ct_push_pull (h, ct_buffer_from_rgba (in_info, rgba, stride_pad));
  ct_output_info (h, out_info);
  gst_harness_teardown (h);
  return out;
}

GST_START_TEST (test_rgba_matches_libctsr)
{
  const gint w = 23, h = 17;
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (w, h, 7, TRUE);
  const gdouble ts[] = { 0.5, 0.0, 0.8 };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (ts); i++) {
    GstVideoInfo in_info, out_info;
    GstBuffer *out = run_one ("video/x-raw,format=RGBA,width=23,height=17,framerate=0/1",
        rgba, 0, ts[i], &in_info, &out_info);
    guint8 *want = ct_ref_upscale (ref, rgba, w, h, (gfloat) ts[i]);
    guint8 *got = ct_rgba_from_buffer (&out_info, out);
    CtDiff d = ct_diff (got, want, (gsize) w * h * 16, 1, 0);

    fail_unless (d.max == 0, "t=%.2f: RGBA differs from ctsr_process_rgba8 (max %d)", ts[i],
        d.max);
    g_free (want);
    g_free (got);
    gst_buffer_unref (out);
  }
  g_free (rgba);
  ctsr_context_destroy (ref);
}

GST_END_TEST;

GST_START_TEST (test_rgb_formats_match_rgba)
{
  static const gchar *formats[] = { "BGRA", "RGBx", "BGRx", "RGB", "BGR" };
  const gint w = 19, h = 11;
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (w, h, 3, TRUE);
  guint8 *opaque = ct_make_rgba (w, h, 3, FALSE);
  guint8 *want_alpha = ct_ref_upscale (ref, rgba, w, h, 0.5f);
  guint8 *want_opaque = ct_ref_upscale (ref, opaque, w, h, 0.5f);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,framerate=0/1",
        formats[i], w, h);
    GstVideoInfo in_info, out_info;
    const gboolean alpha = i == 0;
    GstBuffer *out = run_one (caps, alpha ? rgba : opaque, 0, 0.5, &in_info, &out_info);
    guint8 *got = ct_rgba_from_buffer (&out_info, out);
    const guint8 *want = alpha ? want_alpha : want_opaque;
    gint c;

    for (c = 0; c < (alpha ? 4 : 3); c++) {
      CtDiff d = ct_diff (got, want, (gsize) w * h * 16, 4, c);

      fail_unless (d.max == 0, "%s: channel %d differs from the RGBA path (max %d)",
          formats[i], c, d.max);
    }
    g_free (got);
    g_free (caps);
    gst_buffer_unref (out);
  }
  g_free (want_alpha);
  g_free (want_opaque);
  g_free (rgba);
  g_free (opaque);
  ctsr_context_destroy (ref);
}

GST_END_TEST;

/* YUV in, YUV out, against: the same YUV input converted to RGBA by the double-precision
 * reference, upscaled by libctsr, converted back by the reference. The element converts
 * in 16.16 fixed point, so its RGBA input differs by a code value here and there; the
 * network passes that on, and output rounding adds its own. */
GST_START_TEST (test_yuv_matches_rgba)
{
  static const struct
  {
    const gchar *format, *extra;
    gint w, h;
  } cases[] = {
    {"I420", "", 24, 18},       /* BT.601 limited (the default at this size), centred */
    {"NV12", "", 24, 18},
    {"I420", ",colorimetry=bt709,chroma-site=mpeg2", 24, 18},
    {"NV12", ",colorimetry=bt2020", 24, 18},
    {"I420", ",colorimetry=1:4:0:0", 24, 18},   /* full range BT.601 (jpeg-style) */
    {"NV12", ",colorimetry=1:3:5:1,chroma-site=cosited", 24, 18},  /* full range BT.709 */
    {"I420", "", 17, 9},        /* odd sizes: chroma rounded up */
    {"NV12", ",colorimetry=bt709", 15, 7},
  };
  ctsr_context *ref = ct_ref_open ();
  gdouble worst_mean = 0;
  gint worst_max = 0;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    const gint w = cases[i].w, h = cases[i].h;
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,framerate=0/1%s",
        cases[i].format, w, h, cases[i].extra);
    guint8 *rgba = ct_make_rgba (w, h, 11 + i, FALSE);
    GstVideoInfo in_info, out_info;
    CtYuvSpec in_spec, out_spec;
    GstBuffer *in, *out;
    guint8 *in_planes[3], *out_planes[3], *ref_in, *ref_out, *want[3];
    gint ow, oh, c;

    out = run_one (caps, rgba, 0, 0.5, &in_info, &out_info);
    ow = GST_VIDEO_INFO_WIDTH (&out_info);
    oh = GST_VIDEO_INFO_HEIGHT (&out_info);
    fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&out_info),
        GST_VIDEO_INFO_FORMAT (&in_info));

    /* the reference path from exactly the element's input */
    ct_yuv_spec_from_info (&in_info, &in_spec);
    ct_yuv_spec_from_info (&out_info, &out_spec);
    in = ct_buffer_from_rgba (&in_info, rgba, 0);
    ct_planes_from_buffer (&in_info, in, &in_planes[0], &in_planes[1], &in_planes[2]);
    ref_in = g_malloc ((gsize) w * h * 4);
    ct_rgba_from_yuv (&in_spec, in_planes[0], in_planes[1], in_planes[2], w, h, ref_in);
    ref_out = ct_ref_upscale (ref, ref_in, w, h, 0.5f);
    want[0] = g_malloc ((gsize) ow * oh);
    want[1] = g_malloc ((gsize) (ow + 1) / 2 * ((oh + 1) / 2));
    want[2] = g_malloc ((gsize) (ow + 1) / 2 * ((oh + 1) / 2));
    ct_yuv_from_rgba (&out_spec, ref_out, ow, oh, want[0], want[1], want[2]);
    ct_planes_from_buffer (&out_info, out, &out_planes[0], &out_planes[1], &out_planes[2]);

    for (c = 0; c < 3; c++) {
      const gsize n = c == 0 ? (gsize) ow * oh : (gsize) ((ow + 1) / 2) * ((oh + 1) / 2);
      CtDiff d = ct_diff (out_planes[c], want[c], n, 1, 0);

      g_print ("%s %dx%d%s plane %d: mean abs diff %.3f, max %d\n", cases[i].format, w, h,
          cases[i].extra, c, d.mean, d.max);
      worst_mean = MAX (worst_mean, d.mean);
      worst_max = MAX (worst_max, d.max);
      fail_unless (d.mean < YUV_MEAN_TOLERANCE && d.max <= YUV_MAX_TOLERANCE,
          "%s: plane %d: mean %.3f (< %.1f), max %d (<= %d)", caps, c, d.mean,
          YUV_MEAN_TOLERANCE, d.max, YUV_MAX_TOLERANCE);
      g_free (in_planes[c]);
      g_free (out_planes[c]);
      g_free (want[c]);
    }
    g_free (ref_in);
    g_free (ref_out);
    g_free (rgba);
    g_free (caps);
    gst_buffer_unref (in);
    gst_buffer_unref (out);
  }
  g_print ("YUV vs RGBA path: worst mean abs diff %.3f, worst max %d\n", worst_mean,
      worst_max);
  ctsr_context_destroy (ref);
}

GST_END_TEST;

/* The double-precision Y'CbCr reference itself against GStreamer's video converter, on
 * 4x4 blocks of solid colour (so chroma siting and filters do not matter). Measured: within
 * 1-2 code values; the bound is 3 because GStreamer's own fixed-point paths round (its
 * 8-bit matrices are coarse, and unpacking to 16 bits as c * 257 moves the chroma zero by
 * half a code). A wrong matrix or range is off by tens of codes (BT.601 vs BT.709 red: Y 81
 * vs 63). */
static void
convert_with_gst (const GstVideoInfo * from, GstBuffer * in, const GstVideoInfo * to,
    GstBuffer * out)
{
  GstStructure *config = gst_structure_new ("GstVideoConverter",
      GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
      GST_VIDEO_DITHER_NONE, GST_VIDEO_CONVERTER_OPT_CHROMA_RESAMPLER_METHOD,
      GST_TYPE_VIDEO_RESAMPLER_METHOD, GST_VIDEO_RESAMPLER_METHOD_LINEAR, NULL);
  GstVideoConverter *conv = gst_video_converter_new ((GstVideoInfo *) from,
      (GstVideoInfo *) to, config);
  GstVideoFrame fin, fout;

  fail_unless (conv != NULL);
  fail_unless (gst_video_frame_map (&fin, from, in, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&fout, to, out, GST_MAP_WRITE));
  gst_video_converter_frame (conv, &fin, &fout);
  gst_video_frame_unmap (&fin);
  gst_video_frame_unmap (&fout);
  gst_video_converter_free (conv);
}

GST_START_TEST (test_reference_matches_gst_converter)
{
  static const gchar *colorimetries[] = { "bt601", "bt709", "bt2020", "1:4:0:0" };
  const gint n = 6 * 6 * 6, w = 4, h = 4 * n;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (colorimetries); i++) {
    gchar *str = g_strdup_printf ("video/x-raw,format=I420,width=%d,height=%d,"
        "colorimetry=%s,chroma-site=jpeg", w, h, colorimetries[i]);
    GstCaps *caps = gst_caps_from_string (str);
    GstVideoInfo yuv_info, rgba_info, argb64_info;
    GstVideoFrame frame;
    CtYuvSpec spec;
    guint8 *rgba = g_malloc ((gsize) w * h * 4), *back = g_malloc ((gsize) w * h * 4);
    guint8 *want[3], *got[3];
    GstBuffer *rgba_buf, *yuv_buf, *rgb_out;
    gint b, x, y, c, max_yuv = 0, max_rgb = 0;

    fail_unless (gst_video_info_from_caps (&yuv_info, caps));
    gst_video_info_set_format (&rgba_info, GST_VIDEO_FORMAT_RGBA, w, h);
    ct_yuv_spec_from_info (&yuv_info, &spec);
    for (b = 0; b < n; b++)
      for (y = 0; y < 4; y++)
        for (x = 0; x < 4; x++) {
          guint8 *p = rgba + ((gsize) (4 * b + y) * w + x) * 4;

          p[0] = 51 * (b % 6);
          p[1] = 51 * (b / 6 % 6);
          p[2] = 51 * (b / 36);
          p[3] = 255;
        }

    /* RGB -> YUV */
    rgba_buf = ct_buffer_from_rgba (&rgba_info, rgba, 0);
    yuv_buf = gst_buffer_new_allocate (NULL, yuv_info.size, NULL);
    convert_with_gst (&rgba_info, rgba_buf, &yuv_info, yuv_buf);
    ct_planes_from_buffer (&yuv_info, yuv_buf, &got[0], &got[1], &got[2]);
    want[0] = g_malloc ((gsize) w * h);
    want[1] = g_malloc ((gsize) w * h / 4);
    want[2] = g_malloc ((gsize) w * h / 4);
    ct_yuv_from_rgba (&spec, rgba, w, h, want[0], want[1], want[2]);
    for (c = 0; c < 3; c++) {
      CtDiff d = ct_diff (got[c], want[c], c ? (gsize) w * h / 4 : (gsize) w * h, 1, 0);

      max_yuv = MAX (max_yuv, d.max);
    }

    /* YUV -> RGB (the block interiors), GStreamer's side at 16 bits (its 8-bit paths
     * round coefficients coarsely) */
    ct_rgba_from_yuv (&spec, got[0], got[1], got[2], w, h, back);
    gst_video_info_set_format (&argb64_info, GST_VIDEO_FORMAT_ARGB64, w, h);
    rgb_out = gst_buffer_new_allocate (NULL, argb64_info.size, NULL);
    convert_with_gst (&yuv_info, yuv_buf, &argb64_info, rgb_out);
    fail_unless (gst_video_frame_map (&frame, &argb64_info, rgb_out, GST_MAP_READ));
    for (b = 0; b < n; b++)
      for (y = 1; y < 3; y++)
        for (x = 1; x < 3; x++)
          for (c = 0; c < 3; c++) {
            const guint16 *row = (const guint16 *) ((const guint8 *)
                GST_VIDEO_FRAME_PLANE_DATA (&frame, 0) +
                (gsize) (4 * b + y) * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0));
            const gint g = (row[4 * x + 1 + c] + 128) / 257;
            const gsize k = ((gsize) (4 * b + y) * w + x) * 4 + c;

            max_rgb = MAX (max_rgb, abs ((gint) back[k] - g));
          }
    gst_video_frame_unmap (&frame);
    g_print ("reference vs GstVideoConverter, %s: RGB->YUV max %d, YUV->RGB max %d\n",
        colorimetries[i], max_yuv, max_rgb);
    fail_unless (max_yuv <= 3 && max_rgb <= 3, "%s: RGB->YUV max %d, YUV->RGB max %d",
        colorimetries[i], max_yuv, max_rgb);

    for (c = 0; c < 3; c++) {
      g_free (want[c]);
      g_free (got[c]);
    }
    g_free (rgba);
    g_free (back);
    gst_buffer_unref (rgba_buf);
    gst_buffer_unref (yuv_buf);
    gst_buffer_unref (rgb_out);
    gst_caps_unref (caps);
    g_free (str);
  }
}

GST_END_TEST;

/* Padded strides and plane offsets (GstVideoMeta) give the same output as packed input. */
GST_START_TEST (test_strides)
{
  static const gchar *formats[] = { "RGBA", "RGB", "I420", "NV12" };
  const gint w = 13, h = 7;
  guint8 *rgba = ct_make_rgba (w, h, 9, TRUE);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,framerate=0/1",
        formats[i], w, h);
    GstVideoInfo in_info, out_info;
    GstBuffer *packed = run_one (caps, rgba, 0, 0.5, &in_info, &out_info);
    GstBuffer *padded = run_one (caps, rgba, 37, 0.5, &in_info, &out_info);
    guint8 *a[3], *b[3];
    gint c;

    ct_planes_from_buffer (&out_info, packed, &a[0], &a[1], &a[2]);
    ct_planes_from_buffer (&out_info, padded, &b[0], &b[1], &b[2]);
    for (c = 0; c < 3; c++) {
      const gsize n = (gsize) GST_VIDEO_INFO_COMP_WIDTH (&out_info, c) *
          GST_VIDEO_INFO_COMP_HEIGHT (&out_info, c);

      fail_unless (memcmp (a[c], b[c], n) == 0, "%s: padded input gives another output",
          formats[i]);
      g_free (a[c]);
      g_free (b[c]);
    }
    gst_buffer_unref (packed);
    gst_buffer_unref (padded);
    g_free (caps);
  }
  g_free (rgba);
}

GST_END_TEST;

GST_START_TEST (test_gap)
{
  GstHarness *h = ct_harness_new ("video/x-raw,format=NV12,width=8,height=6,framerate=0/1");
  GstVideoInfo in_info, out_info;
  GstBuffer *in, *out;
  guint8 *p[3];
  gsize i;

  gst_video_info_set_format (&in_info, GST_VIDEO_FORMAT_NV12, 8, 6);
  in = gst_buffer_new_allocate (NULL, in_info.size, NULL);
  gst_buffer_memset (in, 0, 0x55, in_info.size);
  GST_BUFFER_PTS (in) = 40 * GST_MSECOND;
  GST_BUFFER_DURATION (in) = 40 * GST_MSECOND;
  GST_BUFFER_FLAG_SET (in, GST_BUFFER_FLAG_GAP);
  out = ct_push_pull (h, in);
  ct_output_info (h, &out_info);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), 16);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), 12);
  fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_GAP));
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 40 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), 40 * GST_MSECOND);
  ct_planes_from_buffer (&out_info, out, &p[0], &p[1], &p[2]);
  for (i = 0; i < 16 * 12; i++)
    fail_unless_equals_int (p[0][i], 16);
  for (i = 0; i < 8 * 6; i++) {
    fail_unless_equals_int (p[1][i], 128);
    fail_unless_equals_int (p[2][i], 128);
  }
  for (i = 0; i < 3; i++)
    g_free (p[i]);
  gst_buffer_unref (out);

  /* a normal buffer after it is not a gap */
  in = gst_buffer_new_allocate (NULL, in_info.size, NULL);
  gst_buffer_memset (in, 0, 0x55, in_info.size);
  out = ct_push_pull (h, in);
  fail_if (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_GAP));
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_navigation)
{
  GstHarness *h = ct_harness_new ("video/x-raw,format=RGBA,width=16,height=12,"
      "framerate=0/1");
  GstVideoInfo info;
  GstEvent *ev;
  gdouble x = -1, y = -1;
  gint i;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, 16, 12);
  gst_buffer_unref (ct_push_pull (h, gst_buffer_new_allocate (NULL, info.size, NULL)));

  fail_unless (gst_harness_push_upstream_event (h,
          gst_navigation_event_new_mouse_button_press (1, 21.0, 9.0,
              GST_NAVIGATION_MODIFIER_NONE)));
  fail_unless (gst_harness_push_upstream_event (h,
          gst_navigation_event_new_mouse_move (31.0, 23.0, GST_NAVIGATION_MODIFIER_NONE)));
  for (i = 0; i < 2; i++) {
    /* other upstream events (reconfigure, ...) may come first */
    do {
      ev = gst_harness_pull_upstream_event (h);
      fail_unless (ev != NULL);
      if (GST_EVENT_TYPE (ev) != GST_EVENT_NAVIGATION)
        gst_event_unref (ev);
    } while (GST_EVENT_TYPE (ev) != GST_EVENT_NAVIGATION);
    fail_unless (gst_navigation_event_get_coordinates (ev, &x, &y));
    if (i == 0) {
      fail_unless (x == 10.5 && y == 4.5, "press at %f,%f", x, y);
    } else {
      fail_unless (x == 15.5 && y == 11.5, "move to %f,%f", x, y);
    }
    gst_event_unref (ev);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
ctsrupscale_output_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-output");
  TCase *tc = tcase_create ("output");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_rgba_matches_libctsr);
  tcase_add_test (tc, test_rgb_formats_match_rgba);
  tcase_add_test (tc, test_yuv_matches_rgba);
  tcase_add_test (tc, test_reference_matches_gst_converter);
  tcase_add_test (tc, test_strides);
  tcase_add_test (tc, test_gap);
  tcase_add_test (tc, test_navigation);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_output);
