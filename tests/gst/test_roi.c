/* ctsrupscale: regions of interest (GstVideoRegionOfInterestMeta) set the timestep inside
 * them. Every output is compared with libctsr run directly on the same frame with the map
 * ctsr_timestep_map_fill makes of the same regions (clipped to the frame, empty ones
 * skipped): several, overlapping, partly and wholly outside, empty regions; per-region
 * params (double, float, int, negative = ignored, not a number); roi-timestep on and off;
 * no meta at all; the controllable timestep as the base; QoS dropping a frame; and the
 * output's ROI metas (scaled, ids, type and params kept, exactly one per input meta). */
#include <math.h>
#include <string.h>

#include <gst/controller/gstdirectcontrolbinding.h>
#include <gst/controller/gstinterpolationcontrolsource.h>

#include "ctsrtest.h"

#define W 40
#define H 32
#define CAPS "video/x-raw,format=RGBA,width=40,height=32,framerate=10/1"

/* A region meta; t >= 0 (or a value of another type) goes into "ctsrupscale" params. */
static GstVideoRegionOfInterestMeta *
add_roi (GstBuffer * buf, gint id, guint x, guint y, guint w, guint h, GType type,
    gdouble t)
{
  GstVideoRegionOfInterestMeta *m =
      gst_buffer_add_video_region_of_interest_meta (buf, "face", x, y, w, h);

  m->id = id;
  m->parent_id = 100 + id;
  if (type == G_TYPE_DOUBLE)
    gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("ctsrupscale",
            "timestep", G_TYPE_DOUBLE, t, NULL));
  else if (type == G_TYPE_FLOAT)
    gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("ctsrupscale",
            "timestep", G_TYPE_FLOAT, (gfloat) t, NULL));
  else if (type == G_TYPE_INT)
    gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("ctsrupscale",
            "timestep", G_TYPE_INT, (gint) t, NULL));
  else if (type == G_TYPE_STRING)
    gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("ctsrupscale",
            "timestep", G_TYPE_STRING, "zero", NULL));
  /* params for someone else ride along untouched */
  gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("detector",
          "score", G_TYPE_DOUBLE, 0.75, NULL));
  return m;
}

/* libctsr directly: the frame with a map of these regions (or uniform t with none). */
static guint8 *
ref_upscale (ctsr_context * ctx, const guint8 * rgba, gfloat base,
    const ctsr_timestep_region * r, gint n, gfloat transition)
{
  gfloat map[W * H];
  guint8 *out;
  char err[512];

  if (n) {
    fail_unless (ctsr_timestep_map_fill (map, W, H, W * 4, base, r, n, transition, err,
            sizeof err) == 0, "%s", err);
    fail_unless (ctsr_set_timestep_map (ctx, map, W, H, W * 4, err, sizeof err) == 0, "%s",
        err);
  }
  out = ct_ref_upscale (ctx, rgba, W, H, base);
  ctsr_set_timestep_map (ctx, NULL, 0, 0, 0, err, sizeof err);
  return out;
}

static gint
max_diff (GstBuffer * buf, const guint8 * want)
{
  GstVideoInfo info;
  guint8 *got;
  CtDiff d;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, 2 * W, 2 * H);
  got = ct_rgba_from_buffer (&info, buf);
  d = ct_diff (got, want, (gsize) W * H * 16, 1, 0);
  g_free (got);
  return d.max;
}

static gint
count_rois (GstBuffer * buf)
{
  gpointer state = NULL;
  gint n = 0;

  while (gst_buffer_iterate_meta_filtered (buf, &state,
          GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))
    n++;
  return n;
}

/* Several regions: params of each type, roi-timestep for those without, overlapping, partly
 * and wholly outside the frame, empty; then the output metas. */
GST_START_TEST (test_regions)
{
  GstHarness *h = ct_harness_new (CAPS);
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (W, H, 5, FALSE);
  GstBuffer *in = ct_rgba_frame_at (rgba, W, H, 0), *out;
  /* what the element must make of them (clipped; the others skipped) */
  const ctsr_timestep_region want_r[] = {
    {4, 3, 12, 10, 0.0f},       /* params: double 0 */
    {10, 8, 14, 12, 0.3f},      /* no params: roi-timestep, overlaps the first */
    {30, 20, 10, 12, 1.0f},     /* params: float 7 (clamped), runs past the frame */
    {0, 24, 6, 8, 0.0f},        /* params: int 0, from x = 0 */
    {20, 0, 5, 5, 0.3f},        /* params: a string (not a number): roi-timestep */
  };
  guint8 *want, *uniform;
  gpointer state = NULL;
  GstVideoRegionOfInterestMeta *m;
  gint n = 0;

  g_object_set (h->element, "timestep", 0.6, "roi-timestep", 0.3, "roi-transition", 3.0,
      NULL);
  add_roi (in, 1, 4, 3, 12, 10, G_TYPE_DOUBLE, 0.0);
  add_roi (in, 2, 10, 8, 14, 12, G_TYPE_NONE, 0);
  add_roi (in, 3, 30, 20, 100, 50, G_TYPE_FLOAT, 7.0);
  add_roi (in, 4, 0, 24, 6, 8, G_TYPE_INT, 0);
  add_roi (in, 5, 20, 0, 5, 5, G_TYPE_STRING, 0);
  add_roi (in, 6, 8, 8, 0, 9, G_TYPE_DOUBLE, 0.0);      /* empty */
  add_roi (in, 7, 50, 10, 10, 10, G_TYPE_DOUBLE, 0.0);  /* outside */
  add_roi (in, 8, 2, 2, 30, 20, G_TYPE_DOUBLE, -1.0);   /* negative: ignored */
  out = ct_push_pull (h, in);

  want = ref_upscale (ref, rgba, 0.6f, want_r, G_N_ELEMENTS (want_r), 3.0f);
  uniform = ref_upscale (ref, rgba, 0.6f, NULL, 0, 0);
  fail_if (memcmp (want, uniform, (gsize) W * H * 16) == 0, "the regions change nothing");
  fail_unless_equals_int (max_diff (out, want), 0);

  /* output metas: one per input meta, scaled by 2, ids, type and params kept */
  fail_unless_equals_int (count_rois (out), 8);
  while ((m = (GstVideoRegionOfInterestMeta *) gst_buffer_iterate_meta_filtered (out, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstStructure *p = gst_video_region_of_interest_meta_get_param (m, "detector");
    gdouble score = 0;

    fail_unless_equals_int (m->parent_id, 100 + m->id);
    fail_unless (m->roi_type == g_quark_from_string ("face"));
    fail_unless (p && gst_structure_get_double (p, "score", &score) && score == 0.75);
    fail_unless (m->id == 8 || m->id == 2 ||
        gst_video_region_of_interest_meta_get_param (m, "ctsrupscale") != NULL);
    if (m->id == 1)
      fail_unless (m->x == 8 && m->y == 6 && m->w == 24 && m->h == 20);
    if (m->id == 3)
      fail_unless (m->x == 60 && m->y == 40 && m->w == 200 && m->h == 100);
    if (m->id == 6)
      fail_unless (m->w == 0 && m->h == 18);
    n |= 1 << m->id;
  }
  fail_unless_equals_int (n, 0x1fe);

  g_free (want);
  g_free (uniform);
  gst_buffer_unref (out);
  g_free (rgba);
  ctsr_context_destroy (ref);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* No meta: the uniform path, also right after frames with regions; regions without params
 * while roi-timestep is -1 (the default) change nothing; the automatic transition. */
GST_START_TEST (test_no_meta_and_off)
{
  GstHarness *h = ct_harness_new (CAPS);
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (W, H, 9, FALSE);
  guint8 *uniform = ref_upscale (ref, rgba, 0.5f, NULL, 0, 0);
  const ctsr_timestep_region r = { 6, 5, 20, 16, 0.0f };
  guint8 *with = ref_upscale (ref, rgba, 0.5f, &r, 1,
      (gfloat) ctsr_default_transition (ref));
  GstBuffer *in, *out;
  gdouble roi_t = 0;

  g_object_get (h->element, "roi-timestep", &roi_t, NULL);
  fail_unless (roi_t == -1.0);

  out = ct_push_pull (h, ct_rgba_frame_at (rgba, W, H, 0));
  fail_unless_equals_int (max_diff (out, uniform), 0);
  fail_unless_equals_int (count_rois (out), 0);
  gst_buffer_unref (out);

  /* a region without params, roi-timestep off: ignored, but still passed on (scaled) */
  in = ct_rgba_frame_at (rgba, W, H, 100 * GST_MSECOND);
  add_roi (in, 1, 6, 5, 20, 16, G_TYPE_NONE, 0);
  out = ct_push_pull (h, in);
  fail_unless_equals_int (max_diff (out, uniform), 0);
  fail_unless_equals_int (count_rois (out), 1);
  gst_buffer_unref (out);

  /* with params, default transition (-1: the model's receptive field) */
  in = ct_rgba_frame_at (rgba, W, H, 200 * GST_MSECOND);
  add_roi (in, 1, 6, 5, 20, 16, G_TYPE_DOUBLE, 0.0);
  out = ct_push_pull (h, in);
  fail_unless_equals_int (max_diff (out, with), 0);
  gst_buffer_unref (out);

  /* the same regions again (the map is reused), then no meta: uniform again */
  in = ct_rgba_frame_at (rgba, W, H, 300 * GST_MSECOND);
  add_roi (in, 1, 6, 5, 20, 16, G_TYPE_DOUBLE, 0.0);
  out = ct_push_pull (h, in);
  fail_unless_equals_int (max_diff (out, with), 0);
  gst_buffer_unref (out);
  out = ct_push_pull (h, ct_rgba_frame_at (rgba, W, H, 400 * GST_MSECOND));
  fail_unless_equals_int (max_diff (out, uniform), 0);
  gst_buffer_unref (out);

  g_free (uniform);
  g_free (with);
  g_free (rgba);
  ctsr_context_destroy (ref);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The controllable timestep is the base t around the regions, frame by frame; roi-timestep
 * changes while playing; a frame QoS drops does not disturb the next. */
GST_START_TEST (test_control_and_qos)
{
  const GstClockTime d = 100 * GST_MSECOND;
  GstHarness *h = ct_harness_new (CAPS);
  GstControlSource *cs = gst_interpolation_control_source_new ();
  ctsr_context *ref = ct_ref_open ();
  guint8 *rgba = ct_make_rgba (W, H, 13, FALSE);
  const gdouble base[3] = { 0.0, 0.5, 1.0 }, roi[3] = { 1.0, 0.2, 0.2 };
  GstBuffer *in, *out;
  gint i;

  g_object_set (cs, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  gst_timed_value_control_source_set (GST_TIMED_VALUE_CONTROL_SOURCE (cs), 0, 0.0);
  gst_timed_value_control_source_set (GST_TIMED_VALUE_CONTROL_SOURCE (cs), 2 * d, 1.0);
  fail_unless (gst_object_add_control_binding (GST_OBJECT (h->element),
          gst_direct_control_binding_new_absolute (GST_OBJECT (h->element), "timestep",
              cs)));
  g_object_set (h->element, "roi-transition", 2.0, NULL);
  for (i = 0; i < 3; i++) {
    const ctsr_timestep_region r = { 10, 8, 16, 12, (gfloat) roi[i] };
    guint8 *want = ref_upscale (ref, rgba, (gfloat) base[i], &r, 1, 2.0f);

    g_object_set (h->element, "roi-timestep", roi[i], NULL);
    in = ct_rgba_frame_at (rgba, W, H, i * d);
    add_roi (in, 1, 10, 8, 16, 12, G_TYPE_NONE, 0);
    out = ct_push_pull (h, in);
    fail_unless_equals_int (max_diff (out, want), 0);
    gst_buffer_unref (out);
    g_free (want);
  }

  /* QoS: downstream is late up to 10 s; the frame at 5 s is dropped, the one at 20 s (with
   * other regions) comes out right */
  gst_harness_push_upstream_event (h, gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 2.0, 0,
          10 * GST_SECOND));
  in = ct_rgba_frame_at (rgba, W, H, 5 * GST_SECOND);
  add_roi (in, 1, 0, 0, 20, 20, G_TYPE_DOUBLE, 0.0);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);
  {
    const ctsr_timestep_region r = { 20, 12, 20, 20, 0.0f };
    guint8 *want = ref_upscale (ref, rgba, 1.0f, &r, 1, 2.0f);

    in = ct_rgba_frame_at (rgba, W, H, 20 * GST_SECOND);
    add_roi (in, 1, 20, 12, 30, 30, G_TYPE_DOUBLE, 0.0);
    out = ct_push_pull (h, in);
    fail_unless_equals_int (max_diff (out, want), 0);
    gst_buffer_unref (out);
    g_free (want);
  }

  g_free (rgba);
  gst_object_unref (cs);
  ctsr_context_destroy (ref);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The properties' ranges and defaults. */
GST_START_TEST (test_properties)
{
  GstElement *e = gst_element_factory_make ("ctsrupscale", NULL);
  GParamSpec *ts = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "roi-timestep");
  GParamSpec *tr = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "roi-transition");
  gdouble v = 0;

  fail_unless (ts && tr);
  fail_unless (ts->flags & GST_PARAM_CONTROLLABLE);
  fail_unless (G_PARAM_SPEC_DOUBLE (ts)->minimum == -1.0
      && G_PARAM_SPEC_DOUBLE (ts)->maximum == 1.0);
  g_object_get (e, "roi-transition", &v, NULL);
  fail_unless (v == -1.0);
  g_object_set (e, "roi-transition", 7.5, NULL);
  g_object_get (e, "roi-transition", &v, NULL);
  fail_unless (v == 7.5);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
ctsrupscale_roi_suite (void)
{
  Suite *s = suite_create ("ctsrupscale-roi");
  TCase *tc = tcase_create ("roi");

  tcase_add_test (tc, test_properties);
  tcase_add_test (tc, test_regions);
  tcase_add_test (tc, test_no_meta_and_off);
  tcase_add_test (tc, test_control_and_qos);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (ctsrupscale_roi);
