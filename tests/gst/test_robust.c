/* ctsrupscale under hostile input (issue 9): a buffer shorter than its caps, tile-size
 * INT_MAX, frame sizes the device can never process, and 100 NULL -> PLAYING -> NULL cycles
 * of a pipeline without growth of memory or file descriptors. */
#include <string.h>
#include <dirent.h>

#include "ctsrtest.h"

/* The first ERROR of the element on bus; NULL when none. */
static GError *
pop_error (GstBus * bus)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  GError *err = NULL;
  gchar *debug = NULL;

  if (!msg)
    return NULL;
  gst_message_parse_error (msg, &err, &debug);
  GST_INFO ("error: %s (%s)", err->message, debug);
  g_print ("error: %s\n", err->message);
  g_free (debug);
  gst_message_unref (msg);
  return err;
}

/* 0 bytes, one row short, one byte short: an element error, no output buffer. */
GST_START_TEST (test_short_buffer)
{
  const gsize sizes[] = { 0, 16 * 3 * 15, 16 * 3 * 16 - 1 };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (sizes); i++) {
    GstHarness *h = ct_harness_new ("video/x-raw,format=RGB,width=16,height=16,"
        "framerate=0/1");
    GstBus *bus = gst_bus_new ();
    GstBuffer *in = gst_buffer_new_and_alloc (sizes[i]), *out;
    GError *err;

    gst_element_set_bus (h->element, bus);
    if (sizes[i])
      gst_buffer_memset (in, 0, 0x80, sizes[i]);
    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_ERROR);
    out = gst_harness_try_pull (h);
    fail_unless (out == NULL, "%" G_GSIZE_FORMAT "-byte buffer: a frame was pushed",
        sizes[i]);
    err = pop_error (bus);
    fail_unless (err != NULL, "%" G_GSIZE_FORMAT "-byte buffer: no error", sizes[i]);
    fail_unless (g_error_matches (err, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT),
        "%s %d", g_quark_to_string (err->domain), err->code);
    fail_unless (strstr (err->message, "16x16 RGB") != NULL, "%s", err->message);
    g_error_free (err);

    /* a whole frame afterwards is upscaled */
    in = gst_buffer_new_and_alloc (16 * 3 * 16);
    gst_buffer_memset (in, 0, 0x80, 16 * 3 * 16);
    out = ct_push_pull (h, in);
    fail_unless_equals_int (gst_buffer_get_size (out), 32 * 3 * 32);
    gst_buffer_unref (out);
    gst_element_set_bus (h->element, NULL);
    gst_object_unref (bus);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* tile-size = G_MAXINT: one tile, the same frame as the automatic tile size (it used to
 * overflow and return an unwritten buffer). */
GST_START_TEST (test_tile_size_int_max)
{
  const gint w = 16, hgt = 16;
  GstVideoInfo in_info, out_info;
  guint8 *rgba = ct_make_rgba (w, hgt, 5, FALSE);
  GstHarness *h = ct_harness_new ("video/x-raw,format=RGB,width=16,height=16,framerate=0/1");
  GstBuffer *a, *b;
  guint8 *ra, *rb;
  gsize i, nonzero = 0;

  gst_video_info_set_format (&in_info, GST_VIDEO_FORMAT_RGB, w, hgt);
  gst_video_info_set_format (&out_info, GST_VIDEO_FORMAT_RGB, 2 * w, 2 * hgt);
  a = ct_push_pull (h, ct_buffer_from_rgba (&in_info, rgba, 0));
  g_object_set (h->element, "tile-size", G_MAXINT, NULL);
  b = ct_push_pull (h, ct_buffer_from_rgba (&in_info, rgba, 0));
  ra = ct_rgba_from_buffer (&out_info, a);
  rb = ct_rgba_from_buffer (&out_info, b);
  fail_unless (memcmp (ra, rb, (gsize) w * hgt * 16) == 0, "tile-size INT_MAX differs");
  for (i = 0; i < (gsize) w * hgt * 16; i++)
    nonzero += ra[i] != 0 && i % 4 != 3;
  fail_unless (nonzero > (gsize) w * hgt * 4 * 3 / 2, "output mostly zero");
  /* and back to a small tile */
  g_object_set (h->element, "tile-size", 8, NULL);
  gst_buffer_unref (b);
  b = ct_push_pull (h, ct_buffer_from_rgba (&in_info, rgba, 0));
  g_free (rb);
  rb = ct_rgba_from_buffer (&out_info, b);
  fail_unless (ct_diff (ra, rb, (gsize) w * hgt * 16, 1, 0).max <= 1);
  g_free (ra);
  g_free (rb);
  gst_buffer_unref (a);
  gst_buffer_unref (b);
  g_free (rgba);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* caps of a size the device can never process: refused at negotiation, the message names
 * the limit */
static void
check_refused_caps (const gchar * caps, const gchar * word)
{
  GstHarness *h = gst_harness_new ("ctsrupscale");
  GstBus *bus = gst_bus_new ();
  GstBuffer *in = gst_buffer_new_and_alloc (16);
  GError *err;

  gst_element_set_bus (h->element, bus);
  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, caps);
  /* the buffer is not even looked at: the caps were refused */
  fail_if (gst_harness_push (h, in) == GST_FLOW_OK, "%s accepted", caps);
  err = pop_error (bus);
  fail_unless (err != NULL, "%s: no error", caps);
  fail_unless (g_error_matches (err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION),
      "%s %d", g_quark_to_string (err->domain), err->code);
  fail_unless (strstr (err->message, word) != NULL, "%s: message lacks '%s': %s", caps, word,
      err->message);
  g_error_free (err);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

/* harness negotiation only: TRUE when caps were accepted */
static gboolean
caps_accepted (const gchar * caps)
{
  GstHarness *h = gst_harness_new ("ctsrupscale");
  gboolean ok;

  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, caps);
  ok = GST_VIDEO_FILTER (h->element)->negotiated;
  gst_harness_teardown (h);
  return ok;
}

GST_START_TEST (test_too_large_caps)
{
  /* the smallest of these sizes that the device cannot take (libctsr asked directly): on
   * lavapipe (128 MiB maxStorageBufferRange) 4096x4096, whose RGBA output has 256 MiB */
  static const gint sizes[][2] = { {4096, 4096}, {8192, 8192}, {16384, 16383} };
  ctsr_context *ref = ct_ref_open ();
  gchar *caps;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (sizes); i++)
    if (ctsr_check_frame_size (ref, CTSR_FRAME_RGBA8, sizes[i][0], sizes[i][1], NULL, 0))
      break;
  if (i < G_N_ELEMENTS (sizes)) {
    caps = g_strdup_printf ("video/x-raw,format=RGBA,width=%d,height=%d,framerate=0/1",
        sizes[i][0], sizes[i][1]);
    check_refused_caps (caps, "maxStorageBufferRange");
    g_free (caps);
    caps = g_strdup_printf ("video/x-raw,format=BGR,width=%d,height=%d,framerate=0/1",
        sizes[i][0], sizes[i][1]);
    check_refused_caps (caps, "maxStorageBufferRange");
    g_free (caps);
  } else {
    /* a device with a 4 GiB storage buffer range takes them all */
    fail_unless (caps_accepted ("video/x-raw,format=RGBA,width=16384,height=16383,"
            "framerate=0/1"));
  }
  ctsr_context_destroy (ref);
  /* over libctsr's 16384 pixels a side, any device */
  check_refused_caps ("video/x-raw,format=RGBA,width=16385,height=2,framerate=0/1",
      "16384 pixels a side");
  check_refused_caps ("video/x-raw,format=NV12,width=2,height=20000,framerate=0/1",
      "16384 pixels a side");
  /* the largest edge itself is fine */
  fail_unless (caps_accepted ("video/x-raw,format=RGBA,width=16384,height=2,framerate=0/1"));
}

GST_END_TEST;

static gsize
rss_kib (void)
{
  gchar *s = NULL;
  gsize kib = 0;
  gchar *line;

  if (!g_file_get_contents ("/proc/self/status", &s, NULL, NULL))
    return 0;
  line = strstr (s, "VmRSS:");
  if (line)
    kib = g_ascii_strtoull (line + 6, NULL, 10);
  g_free (s);
  return kib;
}

static gint
count_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *e;
  gint n = 0;

  while (d && (e = readdir (d)))
    n += e->d_name[0] != '.';
  if (d)
    closedir (d);
  return n;
}

static void
on_handoff (GstElement * sink, GstBuffer * buf, GstPad * pad, gpointer data)
{
  (void) sink;
  (void) buf;
  (void) pad;
  g_atomic_int_inc ((gint *) data);
}

/* 100 NULL -> PLAYING -> (EOS) -> NULL cycles: every cycle opens the Vulkan device, loads the
 * model and closes both. Resident memory and file descriptors stay flat after warm-up. */
GST_START_TEST (test_hundred_cycles)
{
  const gint cycles = 100, warmup = 10;
  const gchar *model = g_getenv ("CTSR_TEST_SMALL_MODEL");
  gchar *desc = g_strdup_printf ("videotestsrc num-buffers=2 ! "
      "video/x-raw,format=RGBA,width=16,height=12 ! ctsrupscale name=up "
      "model-location=\"%s\" ! fakesink name=sink signal-handoffs=true", model);
  GstElement *pipeline = gst_parse_launch (desc, NULL);
  GstElement *sink;
  GstBus *bus;
  gsize rss_warm = 0, rss_end, rss_max = 0;
  gint cycle, count = 0, fds_warm = 0, fds_end;

  fail_unless (model != NULL && pipeline != NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (on_handoff), &count);
  bus = gst_element_get_bus (pipeline);
  for (cycle = 0; cycle < cycles; cycle++) {
    GstMessage *msg;

    g_atomic_int_set (&count, 0);
    fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
        GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS,
        "cycle %d: no EOS", cycle);
    gst_message_unref (msg);
    fail_unless_equals_int (g_atomic_int_get (&count), 2);
    fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    if (cycle + 1 == warmup) {
      rss_warm = rss_kib ();
      fds_warm = count_fds ();
    }
    if (cycle >= warmup)
      rss_max = MAX (rss_max, rss_kib ());
  }
  rss_end = rss_kib ();
  fds_end = count_fds ();
  g_print ("RSS after %d cycles %" G_GSIZE_FORMAT " KiB, after %d %" G_GSIZE_FORMAT
      " KiB (max %" G_GSIZE_FORMAT " KiB); fds %d -> %d\n", warmup, rss_warm, cycles,
      rss_end, rss_max, fds_warm, fds_end);
  /* a leak of a context, a model or a frame per cycle would be >= 100 KiB a cycle */
  fail_unless (rss_end <= rss_warm + 4096, "RSS grew from %" G_GSIZE_FORMAT " to %"
      G_GSIZE_FORMAT " KiB", rss_warm, rss_end);
  fail_unless_equals_int (fds_end, fds_warm);
  gst_object_unref (bus);
  gst_object_unref (sink);
  gst_check_object_destroyed_on_unref (pipeline);
  g_free (desc);
}

GST_END_TEST;

static Suite *
ctsrupscale_robust_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-robust");
  TCase *tc = tcase_create ("robust");

  tcase_set_timeout (tc, 220);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_short_buffer);
  tcase_add_test (tc, test_tile_size_int_max);
  tcase_add_test (tc, test_too_large_caps);
  tcase_add_test (tc, test_hundred_cycles);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_robust);
