/* ctsrupscale loaded from the build directory (GST_PLUGIN_PATH) with CTSR_MODEL_PATH unset
 * (main() removes it) finds the source tree's models/ctsr-x2.safetensors by itself, before an
 * installed model, and a pipeline with it reaches PLAYING and upscales a frame.
 * CTSR_MODEL_PATH, when set, still comes first.
 *
 * From meson: CTSR_TEST_PLUGIN_DIR (the build directory of the plugin),
 * CTSR_TEST_INSTALLED_MODEL and CTSR_TEST_SOURCE_MODEL (the installed and the source tree's
 * default model). */
#include <stdlib.h>
#include <string.h>

#include "ctsrtest.h"

/* realpath() of the directory of a file, or of a directory. g_free it. */
static gchar *
real_dir (const gchar * path, gboolean is_file)
{
  gchar *dir = is_file ? g_path_get_dirname (path) : g_strdup (path);
  char *real = realpath (dir, NULL);
  gchar *ret = g_strdup (real ? real : dir);

  free (real);
  g_free (dir);
  return ret;
}

/* The model the element must pick without CTSR_MODEL_PATH: the source tree's, whether an
 * installed model (CTSR_TEST_INSTALLED_MODEL) exists or not. */
static const gchar *
expected_default_model (void)
{
  if (g_file_test (CTSR_TEST_INSTALLED_MODEL, G_FILE_TEST_EXISTS))
    g_print ("note: %s exists; the build tree's plugin must still take %s\n",
        CTSR_TEST_INSTALLED_MODEL, CTSR_TEST_SOURCE_MODEL);
  return CTSR_TEST_SOURCE_MODEL;
}

GST_START_TEST (test_plugin_from_build_tree)
{
  GstElementFactory *factory = gst_element_factory_find ("ctsrupscale");
  GstPlugin *plugin;
  gchar *dir, *want;

  fail_unless (factory != NULL, "ctsrupscale not found (GST_PLUGIN_PATH=%s)",
      g_getenv ("GST_PLUGIN_PATH"));
  plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory));
  fail_unless (plugin != NULL);
  fail_unless (gst_plugin_get_filename (plugin) != NULL);
  dir = real_dir (gst_plugin_get_filename (plugin), TRUE);
  want = real_dir (CTSR_TEST_PLUGIN_DIR, FALSE);
  g_print ("plugin: %s\n", gst_plugin_get_filename (plugin));
  fail_unless_equals_string (dir, want);
  g_free (dir);
  g_free (want);
  gst_object_unref (plugin);
  gst_object_unref (factory);
}

GST_END_TEST;

GST_START_TEST (test_default_model_uninstalled)
{
  const gchar *expected = expected_default_model ();
  GstElement *pipeline, *up, *sink;
  GstState state = GST_STATE_VOID_PENDING;
  GstMessage *msg;
  GstSample *sample = NULL;
  GstVideoInfo info;
  GstMapInfo map;
  GstBus *bus;
  gchar *location = NULL, *device = NULL;
  gint scale = 0;
  gsize i, nonzero = 0;

  fail_unless (g_getenv ("CTSR_MODEL_PATH") == NULL);
  pipeline = gst_parse_launch ("videotestsrc num-buffers=1 "
      "! video/x-raw,format=RGBA,width=24,height=16 ! ctsrupscale name=up "
      "! fakesink name=sink enable-last-sample=true", NULL);
  fail_unless (pipeline != NULL);
  up = gst_bin_get_by_name (GST_BIN (pipeline), "up");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");

  g_object_get (up, "model-location", &location, NULL);
  g_print ("model-location: %s\n", location);
  fail_unless_equals_string (location, expected);

  bus = gst_element_get_bus (pipeline);
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE,
      "PLAYING failed");
  msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "neither EOS nor an error in 120 s");
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gchar *debug = NULL;

    gst_message_parse_error (msg, &err, &debug);
    fail ("error: %s (%s)", err->message, debug);
  }
  gst_message_unref (msg);
  fail_unless_equals_int (gst_element_get_state (pipeline, &state, NULL, 0),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (state, GST_STATE_PLAYING);

  g_object_get (up, "scale", &scale, "device-name", &device, NULL);
  g_print ("device: %s, scale %d\n", device, scale);
  fail_unless_equals_int (scale, 2);
  fail_unless (device != NULL);

  /* one frame came out, upscaled, not blank */
  g_object_get (sink, "last-sample", &sample, NULL);
  fail_unless (sample != NULL, "no frame reached the sink");
  fail_unless (gst_video_info_from_caps (&info, gst_sample_get_caps (sample)));
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&info), 48);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&info), 32);
  fail_unless (gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ));
  fail_unless (map.size >= 48 * 32 * 4);
  for (i = 0; i < map.size; i++)
    nonzero += (i % 4 != 3) && map.data[i] != 0;
  fail_unless (nonzero > map.size / 8, "output nearly black (%" G_GSIZE_FORMAT
      " non-zero colour bytes)", nonzero);
  gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
  gst_sample_unref (sample);

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  g_free (location);
  g_free (device);
  gst_object_unref (bus);
  gst_object_unref (up);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

/* $CTSR_MODEL_PATH comes before the installed and the source tree's model; an empty
 * model-location means the default again. */
GST_START_TEST (test_env_first)
{
  const gchar *other = "/nonexistent/ctsr-test-model.safetensors";
  GstElement *e;
  gchar *location = NULL;

  g_setenv ("CTSR_MODEL_PATH", other, TRUE);
  e = gst_element_factory_make ("ctsrupscale", NULL);
  fail_unless (e != NULL);
  g_object_get (e, "model-location", &location, NULL);
  fail_unless_equals_string (location, other);
  g_free (location);

  g_unsetenv ("CTSR_MODEL_PATH");
  g_object_set (e, "model-location", NULL, NULL);
  g_object_get (e, "model-location", &location, NULL);
  fail_unless_equals_string (location, expected_default_model ());
  g_free (location);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
ctsrupscale_uninstalled_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-uninstalled");
  TCase *tc = tcase_create ("uninstalled");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_plugin_from_build_tree);
  tcase_add_test (tc, test_default_model_uninstalled);
  tcase_add_test (tc, test_env_first);
  return s;
}

int
main (int argc, char **argv)
{
  /* the test is about running without it, whatever the caller's environment holds */
  g_unsetenv ("CTSR_MODEL_PATH");
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (ctsrupscale_uninstalled_suite (), "ctsrupscale-uninstalled",
      __FILE__);
}
