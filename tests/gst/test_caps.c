/* ctsrupscale: caps negotiation (every format, odd and tiny sizes, renegotiation), caps
 * transformation both ways (ints, ranges, lists), refused caps. */
#include <gst/base/gstbasetransform.h>

#include "ctsrtest.h"

static const gchar *formats[] = { "RGBA", "BGRA", "RGBx", "BGRx", "RGB", "BGR", "I420", "NV12" };

/* Every format at several sizes on one element: each size change renegotiates mid-stream. */
GST_START_TEST (test_negotiate_formats_and_sizes)
{
  static const gint sizes[][2] = { {16, 12}, {1, 1}, {3, 5}, {17, 9}, {2, 2}, {16, 12} };
  guint f, i;

  for (f = 0; f < G_N_ELEMENTS (formats); f++) {
    GstHarness *h = gst_harness_new ("ctsrupscale");
    gint scale = 0;

    gst_harness_play (h);
    for (i = 0; i < G_N_ELEMENTS (sizes); i++) {
      const gint w = sizes[i][0], hh = sizes[i][1];
      gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
          "framerate=25/1,pixel-aspect-ratio=4/3", formats[f], w, hh);
      GstVideoInfo in_info, out_info;
      guint8 *rgba = ct_make_rgba (w, hh, i, TRUE);
      GstBuffer *out;
      GstCaps *c;

      gst_harness_set_src_caps_str (h, caps);
      c = gst_caps_from_string (caps);
      fail_unless (gst_video_info_from_caps (&in_info, c));
      gst_caps_unref (c);
      out = ct_push_pull (h, ct_buffer_from_rgba (&in_info, rgba, 0));
      g_object_get (h->element, "scale", &scale, NULL);
      fail_unless_equals_int (scale, 2);

      ct_output_info (h, &out_info);
      fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&out_info),
          GST_VIDEO_INFO_FORMAT (&in_info));
      fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), w * scale);
      fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), hh * scale);
      fail_unless_equals_int (GST_VIDEO_INFO_FPS_N (&out_info), 25);
      fail_unless_equals_int (GST_VIDEO_INFO_FPS_D (&out_info), 1);
      fail_unless_equals_int (GST_VIDEO_INFO_PAR_N (&out_info), 4);
      fail_unless_equals_int (GST_VIDEO_INFO_PAR_D (&out_info), 3);
      fail_unless (gst_buffer_get_size (out) >= GST_VIDEO_INFO_SIZE (&out_info),
          "%s %dx%d: output buffer of %" G_GSIZE_FORMAT " bytes", formats[f], w, hh,
          gst_buffer_get_size (out));
      gst_buffer_unref (out);
      g_free (rgba);
      g_free (caps);
    }
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* The element's transform_caps on caps written out. */
static GstCaps *
transform (GstElement * e, GstPadDirection dir, const gchar * caps, const gchar * filter)
{
  GstBaseTransformClass *klass = GST_BASE_TRANSFORM_GET_CLASS (e);
  GstCaps *c = gst_caps_from_string (caps);
  GstCaps *f = filter ? gst_caps_from_string (filter) : NULL;
  GstCaps *ret = klass->transform_caps (GST_BASE_TRANSFORM (e), dir, c, f);

  gst_caps_unref (c);
  if (f)
    gst_caps_unref (f);
  return ret;
}

static void
check_transform (GstElement * e, GstPadDirection dir, const gchar * caps,
    const gchar * filter, const gchar * expected)
{
  GstCaps *got = transform (e, dir, caps, filter);
  GstCaps *want = gst_caps_from_string (expected);

  fail_unless (gst_caps_is_equal (got, want), "%s %s: got %" GST_PTR_FORMAT
      ", expected %" GST_PTR_FORMAT, dir == GST_PAD_SINK ? "sink->src" : "src->sink", caps,
      got, want);
  gst_caps_unref (got);
  gst_caps_unref (want);
}

GST_START_TEST (test_transform_caps)
{
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  gint scale = -1;

  fail_unless (e != NULL);
  /* works in NULL: the model is loaded on first use */
  check_transform (e, GST_PAD_SINK, "video/x-raw,format=RGBA,width=16,height=12", NULL,
      "video/x-raw,format=RGBA,width=32,height=24");
  g_object_get (e, "scale", &scale, NULL);
  fail_unless_equals_int (scale, 2);

  /* sink -> src: multiply; ranges get the scale as step; PAR, framerate, colorimetry kept */
  check_transform (e, GST_PAD_SINK,
      "video/x-raw,format=I420,width=[1,100],height=[1,2147483647],framerate=30/1,"
      "pixel-aspect-ratio=16/15,colorimetry=bt709", NULL,
      "video/x-raw,format=I420,width=[2,200,2],height=[2,2147483646,2],framerate=30/1,"
      "pixel-aspect-ratio=16/15,colorimetry=bt709");
  check_transform (e, GST_PAD_SINK, "video/x-raw,width={3,5,7},height=[4,8,2]", NULL,
      "video/x-raw,width={6,10,14},height=[8,16,4]");
  /* sizes that overflow are dropped */
  check_transform (e, GST_PAD_SINK, "video/x-raw,width={3,2000000000},height=5", NULL,
      "video/x-raw,width=6,height=10");
  check_transform (e, GST_PAD_SINK, "video/x-raw,width=2000000000,height=5", NULL,
      "EMPTY");
  /* no size: unchanged */
  check_transform (e, GST_PAD_SINK, "video/x-raw,format=NV12", NULL,
      "video/x-raw,format=NV12");

  /* src -> sink: divide, keeping only multiples of the scale */
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=32,height=24", NULL,
      "video/x-raw,width=16,height=12");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=33,height=24", NULL, "EMPTY");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=[3,11],height=[1,2147483647]", NULL,
      "video/x-raw,width=[2,5],height=[1,1073741823]");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=[3,30,3],height=[2,4]", NULL,
      "video/x-raw,width=[3,15,3],height=[1,2]");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=[2,3],height=4", NULL,
      "video/x-raw,width=1,height=2");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=[5,6],height=4", NULL,
      "video/x-raw,width=3,height=2");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width=[4,12,4],height={3,5}", NULL,
      "EMPTY");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width={4,7,10},height={6,9}", NULL,
      "video/x-raw,width={2,5},height=3");
  check_transform (e, GST_PAD_SRC, "video/x-raw,width={5,7},height=6", NULL, "EMPTY");
  /* structures that vanish, others stay */
  check_transform (e, GST_PAD_SRC,
      "video/x-raw,format=RGB,width=5,height=6; video/x-raw,format=BGR,width=8,height=6",
      NULL, "video/x-raw,format=BGR,width=4,height=3");
  /* filter */
  check_transform (e, GST_PAD_SINK, "video/x-raw,width=[1,100],height=[1,100]",
      "video/x-raw,width=40,height=[1,9]", "video/x-raw,width=40,height=[2,8,2]");

  /* round trip: the sink caps that lead to src 64x48 */
  check_transform (e, GST_PAD_SRC, "video/x-raw,format=NV12,width=64,height=48,"
      "framerate=0/1", NULL, "video/x-raw,format=NV12,width=32,height=24,framerate=0/1");
  gst_object_unref (e);
}

GST_END_TEST;

/* Downstream decides the size: upstream is asked for size / scale. */
GST_START_TEST (test_downstream_size)
{
  GstHarness *h = gst_harness_new ("ctsrupscale");
  GstPad *sinkpad = gst_element_get_static_pad (h->element, "sink");
  GstCaps *caps, *want;

  gst_harness_set_sink_caps_str (h, "video/x-raw,format=NV12,width=40,height=30");
  caps = gst_pad_query_caps (sinkpad, NULL);
  want = gst_caps_from_string ("video/x-raw,format=NV12,width=20,height=15");
  fail_unless (gst_caps_can_intersect (caps, want), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref (want);
  want = gst_caps_from_string ("video/x-raw,width=40");
  fail_if (gst_caps_can_intersect (caps, want), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref (want);
  gst_caps_unref (caps);
  caps = gst_caps_from_string ("video/x-raw,format=NV12,width=20,height=15,framerate=0/1");
  fail_unless (gst_pad_query_accept_caps (sinkpad, caps));
  gst_caps_unref (caps);
  gst_object_unref (sinkpad);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_refused_caps)
{
  GstHarness *h;
  GstVideoInfo info;
  GstBuffer *buf;

  /* a format outside the list */
  h = gst_harness_new ("ctsrupscale");
  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=GRAY8,width=16,height=12");
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 16, 12);
  buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);

  /* downstream only takes a size that is not scale x the input */
  h = gst_harness_new ("ctsrupscale");
  gst_harness_play (h);
  gst_harness_set_sink_caps_str (h, "video/x-raw,format=RGBA,width=33,height=24");
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGBA,width=16,height=12,"
      "framerate=0/1");
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, 16, 12);
  buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);

  /* downstream only takes another format */
  h = gst_harness_new ("ctsrupscale");
  gst_harness_play (h);
  gst_harness_set_sink_caps_str (h, "video/x-raw,format=BGRA,width=32,height=24");
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGBA,width=16,height=12,"
      "framerate=0/1");
  buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* An x4 model: sizes follow the model's scale. */
GST_START_TEST (test_scale_x4)
{
  const gchar *x2 = g_getenv ("CTSR_MODEL_PATH");
  gchar *dir = g_path_get_dirname (x2);
  gchar *x4 = g_build_filename (dir, "golden_x4.safetensors", NULL);
  GstHarness *h = gst_harness_new ("ctsrupscale");
  GstVideoInfo in_info, out_info;
  GstBuffer *out;
  guint8 *rgba = ct_make_rgba (3, 5, 1, TRUE);
  gint scale = 0;

  /* the harness starts playing: model-location only changes in NULL or READY */
  gst_element_set_state (h->element, GST_STATE_NULL);
  g_object_set (h->element, "model-location", x4, NULL);
  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=I420,width=3,height=5,"
      "framerate=0/1");
  gst_video_info_set_format (&in_info, GST_VIDEO_FORMAT_I420, 3, 5);
  out = ct_push_pull (h, ct_buffer_from_rgba (&in_info, rgba, 0));
  g_object_get (h->element, "scale", &scale, NULL);
  fail_unless_equals_int (scale, 4);
  ct_output_info (h, &out_info);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), 12);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), 20);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_free (rgba);
  g_free (x4);
  g_free (dir);
}

GST_END_TEST;

static Suite *
ctsrupscale_caps_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-caps");
  TCase *tc = tcase_create ("caps");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_negotiate_formats_and_sizes);
  tcase_add_test (tc, test_transform_caps);
  tcase_add_test (tc, test_downstream_size);
  tcase_add_test (tc, test_refused_caps);
  tcase_add_test (tc, test_scale_x4);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_caps);
