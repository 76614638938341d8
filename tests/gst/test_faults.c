/* ctsrupscale when the device fails while streaming (issue 9): with the test build of the
 * plugin (libctsr-faults), CTSR_FAULT makes the N-th frame fail as if the Vulkan device was
 * lost (VK_ERROR_DEVICE_LOST at submission) or a device allocation failed
 * (VK_ERROR_OUT_OF_DEVICE_MEMORY). The element posts an error, the pipeline stops and shuts
 * down cleanly (to NULL, everything freed), and plays again once the fault is gone. */
#include <string.h>

#include "ctsrtest.h"

static void
on_handoff (GstElement * sink, GstBuffer * buf, GstPad * pad, gpointer data)
{
  (void) sink;
  (void) buf;
  (void) pad;
  g_atomic_int_inc ((gint *) data);
}

static GstElement *
make_pipeline (gint * count)
{
  GstElement *pipeline = gst_parse_launch ("videotestsrc num-buffers=6 ! "
      "video/x-raw,format=RGBA,width=16,height=12 ! ctsrupscale name=up ! "
      "fakesink name=sink signal-handoffs=true", NULL);
  GstElement *sink;

  fail_unless (pipeline != NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (on_handoff), count);
  gst_object_unref (sink);
  return pipeline;
}

/* Plays with CTSR_FAULT=fault; expects an error from ctsrupscale naming vk_error after
 * `frames` good frames; then NULL, and a clean run without the fault. */
static void
check_fault (const gchar * fault, const gchar * vk_error, gint frames)
{
  gint count = 0;
  GstElement *pipeline;
  GstBus *bus;
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL;

  /* before the pipeline: linking may open the device already (caps queries need the scale) */
  g_setenv ("CTSR_FAULT", fault, TRUE);
  pipeline = make_pipeline (&count);
  bus = gst_element_get_bus (pipeline);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "%s: neither error nor EOS", fault);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_ERROR);
  fail_unless_equals_string (GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), "up");
  gst_message_parse_error (msg, &err, &debug);
  g_print ("%s: %s\n", fault, err->message);
  fail_unless (g_error_matches (err, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED),
      "%s %d", g_quark_to_string (err->domain), err->code);
  fail_unless (strstr (err->message, vk_error) != NULL, "%s", err->message);
  fail_unless (strstr (err->message, "16x12") != NULL, "%s", err->message);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  /* the frames before the fault went through, none after it */
  fail_unless_equals_int (g_atomic_int_get (&count), frames);
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);

  /* fault gone (a new device is opened at NULL -> READY): the whole stream plays */
  g_unsetenv ("CTSR_FAULT");
  g_atomic_int_set (&count, 0);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);
  fail_unless_equals_int (g_atomic_int_get (&count), 6);
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_object_unref (bus);
  gst_check_object_destroyed_on_unref (pipeline);
}

GST_START_TEST (test_device_lost)
{
  check_fault ("device-lost:3", "VK_ERROR_DEVICE_LOST", 2);
}

GST_END_TEST;

GST_START_TEST (test_failed_allocation)
{
  check_fault ("alloc:2", "VK_ERROR_OUT_OF_DEVICE_MEMORY", 1);
}

GST_END_TEST;

/* a lost device in the first frame: nothing comes out */
GST_START_TEST (test_device_lost_first_frame)
{
  check_fault ("device-lost:1", "VK_ERROR_DEVICE_LOST", 0);
}

GST_END_TEST;

static Suite *
ctsrupscale_faults_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-faults");
  TCase *tc = tcase_create ("faults");

  tcase_set_timeout (tc, 100);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_device_lost);
  tcase_add_test (tc, test_failed_allocation);
  tcase_add_test (tc, test_device_lost_first_frame);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_faults);
