/* ctsrupscale without any Vulkan driver (run with VK_ICD_FILENAMES / VK_DRIVER_FILES
 * pointing at a file that does not exist): the element can be created and inspected, and
 * NULL -> READY fails with a GST_ELEMENT_ERROR that says there is no Vulkan device. */
#include <string.h>

#include "ctsrtest.h"

GST_START_TEST (test_no_vulkan_device)
{
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL, *name = NULL;
  gint scale = -1;

  fail_unless (e != NULL);
  g_object_get (e, "scale", &scale, "device-name", &name, NULL);
  fail_unless_equals_int (scale, 0);
  fail_unless (name == NULL);

  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error on the bus");
  gst_message_parse_error (msg, &err, &debug);
  g_print ("error: %s\ndebug: %s\n", err->message, debug);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND),
      "%s %d", g_quark_to_string (err->domain), err->code);
  fail_unless (strstr (err->message, "Vulkan") != NULL, "%s", err->message);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);

  /* a pipeline fails the same way */
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_check_object_destroyed_on_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_no_vulkan_device_pipeline)
{
  GstElement *pipeline = gst_parse_launch ("videotestsrc num-buffers=1 ! ctsrupscale ! "
      "fakesink", NULL);
  GstBus *bus;
  GstMessage *msg;

  fail_unless (pipeline != NULL);
  bus = gst_element_get_bus (pipeline);
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_END_TEST;

static Suite *
ctsrupscale_nodevice_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-no-device");
  TCase *tc = tcase_create ("no-device");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_no_vulkan_device);
  tcase_add_test (tc, test_no_vulkan_device_pipeline);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_nodevice);
