/* ctsrupscale: error paths. Missing, unreadable and corrupt model files and a Vulkan device
 * index that does not exist fail the NULL -> READY state change with a clear
 * GST_ELEMENT_ERROR; the element recovers once fixed and leaks nothing. Out-of-range
 * property values are refused by the GParamSpecs. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

#include "ctsrtest.h"

/* Sets the state, expects failure and one ERROR from the element; returns its message. */
static gchar *
expect_state_error (GstElement * e, GstState state, gint code)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL, *text;

  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, state), GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  fail_unless (GST_MESSAGE_SRC (msg) == GST_OBJECT (e));
  gst_message_parse_error (msg, &err, &debug);
  GST_INFO ("error: %s (%s)", err->message, debug);
  fail_unless (err->domain == GST_RESOURCE_ERROR, "domain %s", g_quark_to_string (err->domain));
  fail_unless_equals_int (err->code, code);
  text = g_strdup (err->message);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  return text;
}

static void
check_model_error_word (const gchar * path, gint code, const gchar * word)
{
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  gchar *msg;
  gint scale = -1;

  g_object_set (e, "model-location", path, NULL);
  msg = expect_state_error (e, GST_STATE_READY, code);
  g_print ("%s\n", msg);
  fail_unless (strstr (msg, path) != NULL, "message without the path: %s", msg);
  fail_unless (!word || strstr (msg, word) != NULL, "message without '%s': %s", word, msg);
  g_object_get (e, "scale", &scale, NULL);
  fail_unless_equals_int (scale, 0);
  g_free (msg);

  /* fixed: works */
  g_object_set (e, "model-location", g_getenv ("CTSR_MODEL_PATH"), NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  g_object_get (e, "scale", &scale, NULL);
  fail_unless_equals_int (scale, 2);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_check_object_destroyed_on_unref (e);
}

static void
check_model_error (const gchar * path, gint code)
{
  check_model_error_word (path, code, NULL);
}

GST_START_TEST (test_missing_model)
{
  check_model_error ("/nonexistent-ctsr-dir/missing.safetensors", GST_RESOURCE_ERROR_NOT_FOUND);
}

GST_END_TEST;

GST_START_TEST (test_unreadable_model)
{
  /* a directory: exists, cannot be read as a file */
  gchar *dir = g_dir_make_tmp ("ctsr-test-XXXXXX", NULL);

  fail_unless (dir != NULL);
  check_model_error (dir, GST_RESOURCE_ERROR_OPEN_READ);
  g_rmdir (dir);
  g_free (dir);
}

GST_END_TEST;

static void
check_corrupt_word (const gchar * contents, gsize len, const gchar * word)
{
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("ctsr-corrupt-XXXXXX.safetensors", &path, NULL);

  fail_unless (fd >= 0);
  fail_unless (write (fd, contents, len) == (gssize) len);
  close (fd);
  check_model_error_word (path, GST_RESOURCE_ERROR_FAILED, word);
  g_unlink (path);
  g_free (path);
}

static void
check_corrupt (const gchar * contents, gsize len)
{
  check_corrupt_word (contents, len, NULL);
}

/* The test model (CTSR_MODEL_PATH) with `from` (in its JSON header) replaced by `to`, or,
 * when from is NULL, the first weight set to `value` and, when value is finite, the next 511
 * to +-value. */
static gchar *
edited_model (const gchar * from, const gchar * to, gfloat value, gsize * len)
{
  gchar *data = NULL, *out;
  gsize n = 0;
  guint64 hl = 0;
  gint i;

  fail_unless (g_file_get_contents (g_getenv ("CTSR_MODEL_PATH"), &data, &n, NULL));
  for (i = 7; i >= 0; i--)
    hl = hl << 8 | (guint8) data[i];
  if (!from) {
    for (i = 0; i < (isfinite (value) ? 512 : 1); i++) {
      gfloat v = i % 2 ? -value : value;

      memcpy (data + 8 + hl + 4 * i, &v, 4);    /* little-endian host */
    }
    *len = n;
    return data;
  } else {
    gchar *hdr = g_strndup (data + 8, hl), *at = strstr (hdr, from);
    GString *h;

    fail_unless (at != NULL, "'%s' not in the model header", from);
    h = g_string_new_len (hdr, at - hdr);
    g_string_append (h, to);
    g_string_append (h, at + strlen (from));
    while (h->len % 8)
      g_string_append_c (h, ' ');
    *len = 8 + h->len + (n - 8 - hl);
    out = g_malloc (*len);
    for (i = 0; i < 8; i++)
      out[i] = (gchar) ((guint64) h->len >> (8 * i));
    memcpy (out + 8, h->str, h->len);
    memcpy (out + 8 + h->len, data + 8 + hl, n - 8 - hl);
    g_string_free (h, TRUE);
    g_free (hdr);
    g_free (data);
    return out;
  }
}

/* edited_model (from, to, value) must be refused with `word` in the error */
static void
check_edited_model (const gchar * from, const gchar * to, gfloat value, const gchar * word)
{
  gsize len;
  gchar *m = edited_model (from, to, value, &len);

  check_corrupt_word (m, len, word);
  g_free (m);
}

/* issue 9: the kinds of invalid model the loader refuses, through the element */
GST_START_TEST (test_invalid_models)
{
  static const gchar huge_header[] = "\xff\xff\xff\xff\xff\xff\xff\x7f{}";

  check_corrupt_word (huge_header, sizeof huge_header - 1, "exceeds the limit");
  check_edited_model (NULL, NULL, NAN, "is NaN");
  check_edited_model (NULL, NULL, 3e38f, "non-finite");
  check_edited_model ("\"format_version\":\"1\"", "\"format_version\":\"2\"", 0, "format_version");
  check_edited_model ("\"shape\":[32,3,3,3]", "\"shape\":[32,3,9,1]", 0, "wrong shape");
  check_edited_model ("\"head.bias\":", "\"head.bias\":{},\"head.bias\":", 0, "appears twice");
  check_edited_model ("\"__metadata__\":", "\"__metadata__\":{},\"__metadata__\":", 0,
      "appears twice");
  check_edited_model ("\"data_offsets\":[0,", "\"data_offsets\":[4,", 0, "data_offsets");
  check_edited_model ("\"shape\":[32]", "\"shape\":[18446744073709551648]", 0,
      "18446744073709551648");
}

GST_END_TEST;

/* a FIFO as the model: refused at once (it used to block forever in fopen) */
GST_START_TEST (test_fifo_model)
{
  gchar *dir = g_dir_make_tmp ("ctsr-test-XXXXXX", NULL);
  gchar *fifo = g_build_filename (dir, "model.safetensors", NULL);

  fail_unless (mkfifo (fifo, 0644) == 0);
  check_model_error_word (fifo, GST_RESOURCE_ERROR_OPEN_READ, "FIFO");
  g_unlink (fifo);
  g_rmdir (dir);
  g_free (fifo);
  g_free (dir);
}

GST_END_TEST;

GST_START_TEST (test_corrupt_model)
{
  static const char garbage[] = "\x13\x57\x9b\xdf\x02\x46\x8a\xce this is not a model file";
  static const char header[] = "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": [1, 2, 3";

  check_corrupt (garbage, sizeof garbage - 1);
  check_corrupt (header, sizeof header - 1);
  check_corrupt ("", 0);
}

GST_END_TEST;

GST_START_TEST (test_bad_device)
{
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  gchar *msg;

  g_object_set (e, "device", 999, NULL);
  msg = expect_state_error (e, GST_STATE_READY, GST_RESOURCE_ERROR_NOT_FOUND);
  fail_unless (strstr (msg, "999") != NULL, "%s", msg);
  fail_unless (strstr (msg, "Vulkan") != NULL, "%s", msg);
  g_free (msg);
  g_object_set (e, "device", -1, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_check_object_destroyed_on_unref (e);
}

GST_END_TEST;

/* gst-launch style: linking works without a model, the state change reports the problem. */
GST_START_TEST (test_pipeline_missing_model)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch ("videotestsrc num-buffers=1 ! ctsrupscale "
      "name=up model-location=/nonexistent-ctsr-dir/m.safetensors ! fakesink", &error);
  GstBus *bus;
  GstMessage *msg;
  GError *err = NULL;

  fail_unless (pipeline != NULL && error == NULL, "gst_parse_launch: %s",
      error ? error->message : "?");
  bus = gst_element_get_bus (pipeline);
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  fail_unless (strstr (err->message, "/nonexistent-ctsr-dir/m.safetensors") != NULL);
  fail_unless_equals_string (GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), "up");
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_check_object_destroyed_on_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_property_ranges)
{
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  gdouble t = -1;
  gint v = -5;

  /* out of range: refused by the GParamSpec (a GLib warning), the value stays valid */
  ASSERT_WARNING (g_object_set (e, "timestep", 2.0, NULL));
  g_object_get (e, "timestep", &t, NULL);
  fail_unless (t == 0.5, "timestep %f", t);
  ASSERT_WARNING (g_object_set (e, "timestep", -0.1, NULL));
  g_object_get (e, "timestep", &t, NULL);
  fail_unless (t == 0.5, "timestep %f", t);
  g_object_set (e, "timestep", 1.0, NULL);
  g_object_get (e, "timestep", &t, NULL);
  fail_unless (t == 1.0);
  g_object_set (e, "timestep", 0.0, NULL);
  g_object_get (e, "timestep", &t, NULL);
  fail_unless (t == 0.0);

  ASSERT_WARNING (g_object_set (e, "tile-size", -1, NULL));
  g_object_get (e, "tile-size", &v, NULL);
  fail_unless_equals_int (v, 0);
  ASSERT_WARNING (g_object_set (e, "device", -2, NULL));
  g_object_get (e, "device", &v, NULL);
  fail_unless_equals_int (v, -1);

  /* read-only */
  ASSERT_WARNING (g_object_set (e, "scale", 3, NULL));
  ASSERT_WARNING (g_object_set (e, "device-name", "x", NULL));
  g_object_get (e, "scale", &v, NULL);
  fail_unless_equals_int (v, 0);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
ctsrupscale_errors_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-errors");
  TCase *tc = tcase_create ("errors");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_missing_model);
  tcase_add_test (tc, test_unreadable_model);
  tcase_add_test (tc, test_corrupt_model);
  tcase_add_test (tc, test_invalid_models);
  tcase_add_test (tc, test_fifo_model);
  tcase_add_test (tc, test_bad_device);
  tcase_add_test (tc, test_pipeline_missing_model);
  tcase_add_test (tc, test_property_ranges);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_errors);
