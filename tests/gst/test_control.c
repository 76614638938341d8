/* ctsrupscale: the timestep under a control source and from other threads, tile-size while
 * playing, model reload in READY, repeated NULL <-> PLAYING cycles. */
#include <math.h>
#include <string.h>

#include <gst/controller/gstinterpolationcontrolsource.h>
#include <gst/controller/gstdirectcontrolbinding.h>

#include "ctsrtest.h"

#define W 16
#define H 12
#define CAPS "video/x-raw,format=RGBA,width=16,height=12,framerate=10/1"

static gboolean
buffer_equals (GstBuffer * buf, const guint8 * want)
{
  GstVideoInfo info;
  guint8 *got;
  gboolean same;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, 2 * W, 2 * H);
  got = ct_rgba_from_buffer (&info, buf);
  same = memcmp (got, want, (gsize) W * H * 16) == 0;
  g_free (got);
  return same;
}

/* timestep bound to a linear control source: 0 at frame 0, 1 at frame 4, held after. */
GST_START_TEST (test_control_source)
{
  const GstClockTime d = 100 * GST_MSECOND;
  GstHarness *h = ct_harness_new (CAPS);
  GstControlSource *cs = gst_interpolation_control_source_new ();
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (W, H, 21, TRUE);
  GstBuffer *outs[6];
  guint8 *want0, *want1;
  gint i;

  g_object_set (cs, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  fail_unless (gst_timed_value_control_source_set (GST_TIMED_VALUE_CONTROL_SOURCE (cs), 0,
          0.0));
  fail_unless (gst_timed_value_control_source_set (GST_TIMED_VALUE_CONTROL_SOURCE (cs),
          4 * d, 1.0));
  fail_unless (gst_object_add_control_binding (GST_OBJECT (h->element),
          gst_direct_control_binding_new_absolute (GST_OBJECT (h->element), "timestep",
              cs)));

  for (i = 0; i < 6; i++) {
    const gdouble t = MIN (i / 4.0, 1.0);
    gdouble got_t = -1;
    guint8 *want;

    outs[i] = ct_push_pull (h, ct_rgba_frame_at (rgba, W, H, i * d));
    g_object_get (h->element, "timestep", &got_t, NULL);
    fail_unless (fabs (got_t - t) < 1e-9, "frame %d: timestep %f, expected %f", i, got_t, t);
    want = ct_ref_upscale (ref, rgba, W, H, (gfloat) t);
    fail_unless (buffer_equals (outs[i], want), "frame %d: output is not libctsr's at t=%.2f",
        i, t);
    g_free (want);
  }

  /* the curve matters: t = 0 and t = 1 differ, equal t gives equal frames */
  want0 = ct_ref_upscale (ref, rgba, W, H, 0.0f);
  want1 = ct_ref_upscale (ref, rgba, W, H, 1.0f);
  fail_if (memcmp (want0, want1, (gsize) W * H * 16) == 0, "t has no effect on the model");
  fail_if (buffer_equals (outs[0], want1));
  fail_unless (buffer_equals (outs[4], want1) && buffer_equals (outs[5], want1));
  for (i = 1; i < 5; i++) {
    GstMapInfo a, b;

    gst_buffer_map (outs[i - 1], &a, GST_MAP_READ);
    gst_buffer_map (outs[i], &b, GST_MAP_READ);
    fail_if (a.size == b.size && memcmp (a.data, b.data, a.size) == 0,
        "frames %d and %d are equal", i - 1, i);
    gst_buffer_unmap (outs[i - 1], &a);
    gst_buffer_unmap (outs[i], &b);
  }
  for (i = 0; i < 6; i++)
    gst_buffer_unref (outs[i]);

  g_free (want0);
  g_free (want1);
  g_free (rgba);
  gst_object_unref (cs);
  ctsr_context_destroy (ref);
  gst_harness_teardown (h);
}

GST_END_TEST;

static void
set_timestep_zero (gpointer thread, gpointer data)
{
  (void) thread;
  g_object_set (GST_ELEMENT (data), "timestep", 0.0, NULL);
}

/* Two threads set timestep to 0 and 1 while frames flow: every frame is exactly one of the
 * two (the value is taken once per frame, under the object lock). */
GST_START_TEST (test_timestep_from_threads)
{
  GstHarness *h = ct_harness_new (CAPS);
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (W, H, 22, TRUE);
  guint8 *want0 = ct_ref_upscale (ref, rgba, W, H, 0.0f);
  guint8 *want1 = ct_ref_upscale (ref, rgba, W, H, 1.0f);
  GValue one = G_VALUE_INIT;
  GstHarnessThread *t0, *t1;
  gint i;

  g_object_set (h->element, "timestep", 1.0, NULL);
  g_value_init (&one, G_TYPE_DOUBLE);
  g_value_set_double (&one, 1.0);
  t1 = gst_harness_stress_property_start_full (h, "timestep", &one, 300);
  t0 = gst_harness_stress_custom_start (h, NULL, set_timestep_zero, h->element, 300);
  for (i = 0; i < 12; i++) {
    GstBuffer *out = ct_push_pull (h, ct_rgba_frame_at (rgba, W, H, i * 100 * GST_MSECOND));

    fail_unless (buffer_equals (out, want0) || buffer_equals (out, want1),
        "frame %d is neither t=0 nor t=1", i);
    gst_buffer_unref (out);
  }
  fail_unless (gst_harness_stress_thread_stop (t0) > 0);
  fail_unless (gst_harness_stress_thread_stop (t1) > 0);
  g_value_unset (&one);

  g_free (want0);
  g_free (want1);
  g_free (rgba);
  ctsr_context_destroy (ref);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* tile-size changes while playing take effect at the next frame; tiling does not change the
 * result beyond rounding. */
GST_START_TEST (test_tile_size_playing)
{
  const gint w = 40, h = 24;
  GstHarness *hh = ct_harness_new ("video/x-raw,format=RGBA,width=40,height=24,"
      "framerate=0/1");
  guint8 *rgba = ct_make_rgba (w, h, 23, TRUE);
  GstVideoInfo in_info, out_info;
  GstBuffer *a, *b;
  guint8 *ra, *rb;
  CtDiff d;

  gst_video_info_set_format (&in_info, GST_VIDEO_FORMAT_RGBA, w, h);
  gst_video_info_set_format (&out_info, GST_VIDEO_FORMAT_RGBA, 2 * w, 2 * h);
  a = ct_push_pull (hh, ct_buffer_from_rgba (&in_info, rgba, 0));
  g_object_set (hh->element, "tile-size", 16, NULL);
  b = ct_push_pull (hh, ct_buffer_from_rgba (&in_info, rgba, 0));
  ra = ct_rgba_from_buffer (&out_info, a);
  rb = ct_rgba_from_buffer (&out_info, b);
  d = ct_diff (ra, rb, (gsize) w * h * 16, 1, 0);
  fail_unless (d.max <= 1, "tiled output differs by %d", d.max);
  g_free (ra);
  g_free (rb);
  gst_buffer_unref (a);
  gst_buffer_unref (b);
  g_free (rgba);
  gst_harness_teardown (hh);
}

GST_END_TEST;

/* model-location changed in READY: reloaded at READY -> PAUSED; ignored while PAUSED. */
GST_START_TEST (test_reload_in_ready)
{
  const gchar *x2 = g_getenv ("CTSR_MODEL_PATH");
  gchar *dir = g_path_get_dirname (x2);
  gchar *x4 = g_build_filename (dir, "golden_x4.safetensors", NULL);
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  gchar *loc = NULL, *name = NULL;
  gint scale = -1;

  g_object_get (e, "scale", &scale, "device-name", &name, NULL);
  fail_unless_equals_int (scale, 0);
  fail_unless (name == NULL);

  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  g_object_get (e, "scale", &scale, "device-name", &name, NULL);
  fail_unless_equals_int (scale, 2);
  fail_unless (name != NULL && *name);
  g_free (name);

  g_object_set (e, "model-location", x4, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  g_object_get (e, "scale", &scale, NULL);
  fail_unless_equals_int (scale, 4);

  /* not while PAUSED */
  g_object_set (e, "model-location", x2, NULL);
  g_object_get (e, "model-location", &loc, NULL);
  fail_unless_equals_string (loc, x4);
  g_free (loc);

  /* NULL unloads */
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  g_object_get (e, "scale", &scale, NULL);
  fail_unless_equals_int (scale, 0);

  /* empty / NULL location: back to the default ($CTSR_MODEL_PATH here) */
  g_object_set (e, "model-location", NULL, NULL);
  g_object_get (e, "model-location", &loc, NULL);
  fail_unless_equals_string (loc, x2);
  g_free (loc);

  gst_check_object_destroyed_on_unref (e);
  g_free (x4);
  g_free (dir);
}

GST_END_TEST;

static void
on_handoff (GstElement * sink, GstBuffer * buf, GstPad * pad, gpointer data)
{
  (void) sink;
  (void) buf;
  (void) pad;
  g_atomic_int_inc ((gint *) data);
}

/* NULL -> PLAYING -> (EOS) -> NULL, five times on the same pipeline. */
GST_START_TEST (test_state_cycles)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch ("videotestsrc num-buffers=3 ! "
      "video/x-raw,format=I420,width=16,height=12 ! ctsrupscale name=up ! "
      "fakesink name=sink signal-handoffs=true", &error);
  GstElement *up, *sink;
  GstBus *bus;
  gint cycle, count = 0;

  fail_unless (pipeline != NULL, "gst_parse_launch: %s", error ? error->message : "?");
  up = gst_bin_get_by_name (GST_BIN (pipeline), "up");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (on_handoff), &count);
  bus = gst_element_get_bus (pipeline);

  for (cycle = 0; cycle < 5; cycle++) {
    GstMessage *msg;
    gint scale = 0;

    g_atomic_int_set (&count, 0);
    fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
        GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (msg != NULL, "cycle %d: no EOS", cycle);
    fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
    gst_message_unref (msg);
    fail_unless_equals_int (g_atomic_int_get (&count), 3);
    g_object_get (up, "scale", &scale, NULL);
    fail_unless_equals_int (scale, 2);
    fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_object_unref (up);
  gst_check_object_destroyed_on_unref (pipeline);
}

GST_END_TEST;

static Suite *
ctsrupscale_control_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-control");
  TCase *tc = tcase_create ("control");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_control_source);
  tcase_add_test (tc, test_timestep_from_threads);
  tcase_add_test (tc, test_tile_size_playing);
  tcase_add_test (tc, test_reload_in_ready);
  tcase_add_test (tc, test_state_cycles);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_control);
