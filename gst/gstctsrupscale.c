/* ctsrupscale: GStreamer video filter that upscales frames with libctsr.
 *
 * SPDX-License-Identifier: MIT
 */

/**
 * SECTION:element-ctsrupscale
 * @title: ctsrupscale
 * @short_description: neural-network video upscaler (Vulkan compute, libctsr)
 *
 * Upscales every frame by the loaded model's factor (2 for the shipped models, `ctsr-x2`,
 * the default, and the smaller `ctsr-x2-tiny`) with a small super-resolution network run
 * by libctsr on a Vulkan device (a GPU, or Mesa's lavapipe on the CPU). The
 * #GstCtsrUpscale:timestep property moves the result from fidelity (0) to realness (1); it
 * is controllable, so it can be animated with a #GstControlSource, and it may be changed
 * while playing at no cost.
 *
 * Input and output have the same format (RGBA, BGRA, RGBx, BGRx, RGB, BGR, I420 or NV12);
 * the output is `scale` times larger in both directions, pixel-aspect-ratio and framerate
 * pass through. The network works on RGB: YUV frames are converted in the shaders (on the
 * host where the device lacks 8-bit storage buffers) with the stream's colorimetry (BT.601,
 * BT.709 or BT.2020 matrix, limited or full range, chroma siting), and alpha is upscaled
 * bilinearly.
 *
 * Regions of interest: a #GstVideoRegionOfInterestMeta on an input buffer sets the
 * timestep inside its rectangle (e.g. 0, fidelity, on faces and text while the rest of the
 * frame gets realness): the region's own value when its params hold a #GstStructure named
 * "ctsrupscale" with a "timestep" field (a double; a float or an int is accepted too;
 * above 1 is clamped, negative ignores the region), else #GstCtsrUpscale:roi-timestep (-1,
 * the default: such regions are ignored). #GstCtsrUpscale:timestep applies elsewhere, and
 * #GstCtsrUpscale:roi-transition pixels of smooth ramp surround each region. Regions are
 * clipped to the frame, empty ones ignored; where regions overlap the lowest timestep
 * wins. Every region meta goes downstream scaled to the output (id, parent id, type and
 * params kept). A frame without regions costs nothing extra.
 *
 * The model is loaded when the element goes from NULL to READY (or earlier, at the first
 * caps query) from #GstCtsrUpscale:model-location. Its default is `$CTSR_MODEL_PATH` when
 * that environment variable is set; else, for a plugin loaded from its build directory
 * (uninstalled, through `GST_PLUGIN_PATH`), the source tree's `models/ctsr-x2.safetensors`;
 * else the installed `ctsr-x2.safetensors` (`<prefix>/share/ctsr/`).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! video/x-raw,width=160,height=90 ! \
 *     ctsrupscale timestep=0.3 ! videoconvert ! autovideosink
 * ]| Upscales a 160x90 test pattern to 320x180 and shows it.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>

#include <gst/video/navigation.h>

#include "gstctsrupscale.h"
#include "default-model.h"
#ifndef VERSION
#define VERSION "0.0.0"
#endif
#ifndef PACKAGE
#define PACKAGE "gst-ctsr"
#endif
#ifndef GST_PACKAGE_NAME
#define GST_PACKAGE_NAME "gst-ctsr"
#endif
#ifndef GST_PACKAGE_ORIGIN
#define GST_PACKAGE_ORIGIN "Unknown package origin"
#endif

GST_DEBUG_CATEGORY_STATIC (gst_ctsr_upscale_debug);
#define GST_CAT_DEFAULT gst_ctsr_upscale_debug

#define DEFAULT_TIMESTEP 0.5
#define DEFAULT_DEVICE -1
#define DEFAULT_TILE_SIZE 0
#define DEFAULT_ROI_TIMESTEP -1.0
#define DEFAULT_ROI_TRANSITION -1.0
/* the name of the GstStructure a GstVideoRegionOfInterestMeta carries for this element */
#define ROI_PARAMS_NAME "ctsrupscale"

enum
{
  PROP_0,
  PROP_TIMESTEP,
  PROP_MODEL_LOCATION,
  PROP_DEVICE,
  PROP_DEVICE_NAME,
  PROP_SCALE,
  PROP_TILE_SIZE,
  PROP_ROI_TIMESTEP,
  PROP_ROI_TRANSITION,
};

#define CTSR_FORMATS "{ RGBA, BGRA, RGBx, BGRx, RGB, BGR, I420, NV12 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (CTSR_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (CTSR_FORMATS)));

#define gst_ctsr_upscale_parent_class parent_class
G_DEFINE_TYPE (GstCtsrUpscale, gst_ctsr_upscale, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (ctsrupscale, "ctsrupscale", GST_RANK_NONE,
    GST_TYPE_CTSR_UPSCALE);

/* What went wrong when opening the engine, for the error message. */
typedef struct
{
  gint code;                    /* CTSR_E_* */
  gint device;
  gchar *path;                  /* NULL: the context (device) failed, not the model */
  gchar *message;               /* libctsr's */
} OpenFailure;

/* The file the plugin was loaded from (set by plugin_init; NULL for a static plugin). */
static gchar *plugin_filename;

/* The default of model-location (see default-model.h): $CTSR_MODEL_PATH, for the plugin of
 * the build directory the source tree's model, else the installed model. g_free it. */
static gchar *
default_model_location (void)
{
  gchar path[4096];

  if (!ctsr_default_model_path (plugin_filename, path, sizeof path))
    return g_strdup (ctsr_installed_model_path ());
  return g_strdup (path);
}

/* ---------------------------------------------------------------------------------------- */
/* engine: libctsr context + model */

static void
gst_ctsr_upscale_close_locked (GstCtsrUpscale * self)
{
  if (self->ctx) {
    GST_DEBUG_OBJECT (self, "destroying the libctsr context");
    ctsr_context_destroy (self->ctx);
    self->ctx = NULL;
  }
  self->map_set = FALSE;
  GST_OBJECT_LOCK (self);
  self->scale = 0;
  g_clear_pointer (&self->device_name, g_free);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_ctsr_upscale_forget_failure_locked (GstCtsrUpscale * self)
{
  self->failed = FALSE;
  g_clear_pointer (&self->failed_path, g_free);
  g_clear_pointer (&self->failed_message, g_free);
}

/* Opens the context and loads the model for the current configuration unless that is done
 * already. A failure is remembered for the configuration and not retried (caps queries
 * come often); state changes call forget_failure first. engine_lock held. */
static gboolean
gst_ctsr_upscale_open_locked (GstCtsrUpscale * self)
{
  ctsr_options opts = { 0 };
  ctsr_context *ctx = NULL;
  gchar err[512] = "";
  gchar *path;
  guint generation;
  gint tile_size, rc;

  GST_OBJECT_LOCK (self);
  generation = self->config_generation;
  path = g_strdup (self->model_location);
  opts.device_index = self->device;
  opts.tile_size = tile_size = self->tile_size;
  GST_OBJECT_UNLOCK (self);

  if (self->ctx && self->ctx_generation == generation)
    goto done;
  if (self->failed && self->failed_generation == generation)
    goto remembered_failure;
  gst_ctsr_upscale_close_locked (self);
  gst_ctsr_upscale_forget_failure_locked (self);

  GST_INFO_OBJECT (self, "opening Vulkan device %d, model %s", opts.device_index, path);
  rc = ctsr_context_create (&opts, &ctx, err, sizeof err);
  if (rc)
    goto create_failed;
  rc = ctsr_load_model_file (ctx, path, err, sizeof err);
  if (rc)
    goto load_failed;

  self->ctx = ctx;
  self->ctx_generation = generation;
  self->applied_timestep = -1.0f;
  self->map_set = FALSE;        /* a new context has no timestep map */
  GST_OBJECT_LOCK (self);
  if (self->config_generation == generation) {
    self->scale = ctsr_scale (ctx);
    g_free (self->device_name);
    self->device_name = g_strdup (ctsr_device_name (ctx));
  }
  self->tile_size_changed = self->tile_size != tile_size;
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (self, "device \"%s\", model %s, scale %d", ctsr_device_name (ctx), path,
      ctsr_scale (ctx));

done:
  g_free (path);
  return TRUE;

remembered_failure:
  g_free (path);
  return FALSE;

load_failed:
  ctsr_context_destroy (ctx);
  self->failed_path = g_strdup (path);
create_failed:
  GST_WARNING_OBJECT (self, "opening failed (%s): %s", ctsr_strerror (rc), err);
  self->failed = TRUE;
  self->failed_generation = generation;
  self->failed_code = rc;
  self->failed_message = g_strdup (err);
  g_free (path);
  return FALSE;
}

/* Copy of the failure to post outside the lock. engine_lock held. */
static void
gst_ctsr_upscale_get_failure_locked (GstCtsrUpscale * self, OpenFailure * f)
{
  f->code = self->failed_code;
  f->path = g_strdup (self->failed_path);
  f->message = g_strdup (self->failed_message ? self->failed_message : "");
  GST_OBJECT_LOCK (self);
  f->device = self->device;
  GST_OBJECT_UNLOCK (self);
}

static void
gst_ctsr_upscale_post_failure (GstCtsrUpscale * self, OpenFailure * f)
{
  const gchar *code = ctsr_strerror (f->code);

  if (!f->path) {
    gchar *device = f->device < 0 ? g_strdup ("automatic choice") :
        g_strdup_printf ("index %d", f->device);

    switch (f->code) {
      case CTSR_E_NO_DEVICE:
        GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
            ("No usable Vulkan device (%s): %s", device, f->message),
            ("libctsr: %s", code));
        break;
      case CTSR_E_INVALID:
        GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
            ("Cannot use the Vulkan device (%s): %s", device, f->message),
            ("libctsr: %s", code));
        break;
      default:
        GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
            ("Could not open the Vulkan device (%s): %s", device, f->message),
            ("libctsr: %s", code));
        break;
    }
    g_free (device);
  } else {
    switch (f->code) {
      case CTSR_E_IO:
        if (!g_file_test (f->path, G_FILE_TEST_EXISTS))
          GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
              ("Model file \"%s\" not found: %s", f->path, f->message),
              ("libctsr: %s; set the model-location property or CTSR_MODEL_PATH", code));
        else
          GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
              ("Could not read model file \"%s\": %s", f->path, f->message),
              ("libctsr: %s", code));
        break;
      case CTSR_E_FORMAT:
        GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
            ("Model file \"%s\" is not a valid ctsr model: %s", f->path, f->message),
            ("libctsr: %s", code));
        break;
      default:
        GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
            ("Could not load model file \"%s\": %s", f->path, f->message),
            ("libctsr: %s", code));
        break;
    }
  }
  g_free (f->path);
  g_free (f->message);
}

/* A state change's (re)opening: tried afresh, failures posted on the bus. */
static gboolean
gst_ctsr_upscale_open (GstCtsrUpscale * self)
{
  OpenFailure failure;
  gboolean ok;

  g_mutex_lock (&self->engine_lock);
  gst_ctsr_upscale_forget_failure_locked (self);
  ok = gst_ctsr_upscale_open_locked (self);
  if (!ok)
    gst_ctsr_upscale_get_failure_locked (self, &failure);
  g_mutex_unlock (&self->engine_lock);

  if (!ok)
    gst_ctsr_upscale_post_failure (self, &failure);
  return ok;
}

/* The model's scale for caps negotiation, loading it on first use; 0 when that fails. */
static gint
gst_ctsr_upscale_get_scale (GstCtsrUpscale * self)
{
  gint scale;

  GST_OBJECT_LOCK (self);
  scale = self->scale;
  GST_OBJECT_UNLOCK (self);
  if (scale > 0)
    return scale;

  g_mutex_lock (&self->engine_lock);
  scale = gst_ctsr_upscale_open_locked (self) ? ctsr_scale (self->ctx) : 0;
  g_mutex_unlock (&self->engine_lock);
  return scale;
}

/* ---------------------------------------------------------------------------------------- */
/* caps */

static gint64
gcd64 (gint64 a, gint64 b)
{
  while (b) {
    gint64 t = a % b;

    a = b;
    b = t;
  }
  return a;
}

/* Maps one size value up (x scale) or down (/ scale, keeping only the multiples of scale).
 * Ints, int ranges (with steps) and lists of those; FALSE when nothing is left. */
static gboolean
map_size (const GValue * in, gint scale, gboolean up, GValue * out)
{
  if (G_VALUE_HOLDS_INT (in)) {
    gint64 v = g_value_get_int (in);

    if (up)
      v *= scale;
    else if (v % scale)
      return FALSE;
    else
      v /= scale;
    if (v > G_MAXINT)
      return FALSE;
    g_value_init (out, G_TYPE_INT);
    g_value_set_int (out, (gint) v);
    return TRUE;
  }

  if (GST_VALUE_HOLDS_INT_RANGE (in)) {
    gint64 lo = gst_value_get_int_range_min (in);
    gint64 hi = gst_value_get_int_range_max (in);
    gint64 step = gst_value_get_int_range_step (in);

    if (up) {
      /* {lo, lo+step, .., hi} x s = {lo s, .., hi s} in steps of step s */
      step *= scale;
      lo *= scale;
      hi = MIN (hi * scale, (G_MAXINT / step) * step);
    } else {
      /* the values that are multiples of s are the multiples of lcm(step, s) */
      gint64 lcm = step / gcd64 (step, scale) * scale;

      lo = (lo + lcm - 1) / lcm * lcm / scale;
      hi = hi / lcm * lcm / scale;
      step = lcm / scale;
    }
    if (lo > hi || lo > G_MAXINT)
      return FALSE;
    if (lo == hi) {
      g_value_init (out, G_TYPE_INT);
      g_value_set_int (out, (gint) lo);
    } else {
      g_value_init (out, GST_TYPE_INT_RANGE);
      gst_value_set_int_range_step (out, (gint) lo, (gint) hi, (gint) step);
    }
    return TRUE;
  }

  if (GST_VALUE_HOLDS_LIST (in)) {
    GValue list = G_VALUE_INIT;
    guint i, n = gst_value_list_get_size (in);

    g_value_init (&list, GST_TYPE_LIST);
    for (i = 0; i < n; i++) {
      GValue v = G_VALUE_INIT;

      if (map_size (gst_value_list_get_value (in, i), scale, up, &v))
        gst_value_list_append_and_take_value (&list, &v);
    }
    n = gst_value_list_get_size (&list);
    if (n == 0) {
      g_value_unset (&list);
      return FALSE;
    }
    if (n == 1) {
      g_value_init (out, G_VALUE_TYPE (gst_value_list_get_value (&list, 0)));
      g_value_copy (gst_value_list_get_value (&list, 0), out);
      g_value_unset (&list);
    } else {
      *out = list;
    }
    return TRUE;
  }

  /* anything else (should not happen for video sizes) passes unchanged */
  g_value_init (out, G_VALUE_TYPE (in));
  g_value_copy (in, out);
  return TRUE;
}

static gboolean
map_size_field (GstStructure * s, const gchar * field, gint scale, gboolean up)
{
  const GValue *in = gst_structure_get_value (s, field);
  GValue out = G_VALUE_INIT;

  if (!in)
    return TRUE;
  if (!map_size (in, scale, up, &out))
    return FALSE;
  gst_structure_take_value (s, field, &out);
  return TRUE;
}

static GstCaps *
gst_ctsr_upscale_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (trans);
  const gboolean up = direction == GST_PAD_SINK;
  GstCaps *ret;
  gint scale;
  guint i;

  scale = gst_ctsr_upscale_get_scale (self);
  if (scale <= 0)
    goto no_model;

  if (gst_caps_is_any (caps)) {
    ret = gst_caps_ref (caps);
  } else {
    ret = gst_caps_new_empty ();
    for (i = 0; i < gst_caps_get_size (caps); i++) {
      GstStructure *s = gst_structure_copy (gst_caps_get_structure (caps, i));
      GstCapsFeatures *f = gst_caps_get_features (caps, i);

      if (!map_size_field (s, "width", scale, up) || !map_size_field (s, "height", scale, up)) {
        gst_structure_free (s);
        continue;
      }
      ret = gst_caps_merge_structure_full (ret, s, f ? gst_caps_features_copy (f) : NULL);
    }
  }

  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret, GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (ret);
    ret = tmp;
  }
  GST_DEBUG_OBJECT (self, "%s x%d: %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      up ? "sink->src" : "src->sink", scale, caps, ret);
  return ret;

no_model:
  /* No size mapping without a model. Answer with sizes unconstrained so that linking
   * (gst-launch links before the state change) still works: the NULL to READY state change
   * then reports why the model could not be loaded, and set_info refuses to negotiate. */
  GST_WARNING_OBJECT (self, "no model loaded: sizes unconstrained");
  ret = gst_caps_copy (caps);
  for (i = 0; i < gst_caps_get_size (ret); i++) {
    GstStructure *s = gst_caps_get_structure (ret, i);

    gst_structure_set (s, "width", GST_TYPE_INT_RANGE, 1, G_MAXINT,
        "height", GST_TYPE_INT_RANGE, 1, G_MAXINT, NULL);
  }
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret, GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (ret);
    ret = tmp;
  }
  return ret;
}

static void
fixate_int_field (GstStructure * out, const GstStructure * in, const gchar * field,
    gint scale, gboolean up)
{
  gint v;

  if (gst_structure_get_int (in, field, &v) && gst_structure_has_field (out, field))
    gst_structure_fixate_field_nearest_int (out, field,
        (gint) MIN (up ? (gint64) v * scale : v / scale, G_MAXINT));
}

static void
fixate_fraction_field (GstStructure * out, const GstStructure * in, const gchar * field)
{
  gint n, d;

  if (gst_structure_get_fraction (in, field, &n, &d) && gst_structure_has_field (out, field))
    gst_structure_fixate_field_nearest_fraction (out, field, n, d);
}

static GstCaps *
gst_ctsr_upscale_fixate_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * othercaps)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (trans);
  const gboolean up = direction == GST_PAD_SINK;
  const GstStructure *in;
  GstStructure *out;
  gint scale = gst_ctsr_upscale_get_scale (self);

  othercaps = gst_caps_truncate (othercaps);
  if (scale <= 0 || gst_caps_is_empty (othercaps) || gst_caps_is_empty (caps))
    return gst_caps_fixate (othercaps);
  othercaps = gst_caps_make_writable (othercaps);
  in = gst_caps_get_structure (caps, 0);
  out = gst_caps_get_structure (othercaps, 0);

  /* size scaled, everything else as on the other side */
  fixate_int_field (out, in, "width", scale, up);
  fixate_int_field (out, in, "height", scale, up);
  fixate_fraction_field (out, in, "pixel-aspect-ratio");
  fixate_fraction_field (out, in, "framerate");
  othercaps = gst_caps_fixate (othercaps);
  GST_DEBUG_OBJECT (self, "fixated to %" GST_PTR_FORMAT, othercaps);
  return othercaps;
}

static gboolean
gst_ctsr_upscale_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (filter);
  const gint in_w = GST_VIDEO_INFO_WIDTH (in_info), in_h = GST_VIDEO_INFO_HEIGHT (in_info);
  const gint out_w = GST_VIDEO_INFO_WIDTH (out_info), out_h = GST_VIDEO_INFO_HEIGHT (out_info);
  gint scale = gst_ctsr_upscale_get_scale (self);
  gchar err[512] = "";
  gint rc;

  if (scale <= 0)
    goto no_model;
  if (GST_VIDEO_INFO_FORMAT (in_info) != GST_VIDEO_INFO_FORMAT (out_info))
    goto format_mismatch;
  if (out_w != in_w * scale || out_h != in_h * scale)
    goto size_mismatch;
  if (!gst_ctsr_convert_init (&self->in_conv, in_info)
      || !gst_ctsr_convert_init (&self->out_conv, out_info))
    goto unsupported;

  /* sizes the device can never process are refused now, not at the first frame */
  g_mutex_lock (&self->engine_lock);
  rc = self->ctx ? ctsr_check_frame_size (self->ctx,
      self->in_conv.is_yuv && ctsr_supports_yuv (self->ctx) ? CTSR_FRAME_YUV420 :
      CTSR_FRAME_RGBA8, in_w, in_h, err, sizeof err) : 0;
  g_mutex_unlock (&self->engine_lock);
  if (rc)
    goto too_large;

  g_clear_pointer (&self->in_rgba, g_free);
  g_clear_pointer (&self->out_rgba, g_free);
  self->in_rgba_stride = (gsize) in_w * 4;
  self->out_rgba_stride = (gsize) out_w * 4;
  if (!self->in_conv.direct)
    self->in_rgba = g_malloc (self->in_rgba_stride * in_h);
  if (!self->out_conv.direct)
    self->out_rgba = g_malloc (self->out_rgba_stride * out_h);

  GST_INFO_OBJECT (self, "%s %dx%d -> %dx%d%s", gst_video_format_to_string
      (GST_VIDEO_INFO_FORMAT (in_info)), in_w, in_h, out_w, out_h,
      self->in_conv.direct ? " (RGBA, no conversion)" : "");
  return TRUE;

no_model:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("no model loaded"));
  return FALSE;
format_mismatch:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
      ("input and output formats differ: %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
          incaps, outcaps));
  return FALSE;
size_mismatch:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
      ("output %dx%d is not %d x the input %dx%d", out_w, out_h, scale, in_w, in_h));
  return FALSE;
unsupported:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
      ("unsupported caps %" GST_PTR_FORMAT, incaps));
  return FALSE;
too_large:
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("Cannot upscale %s %dx%d frames: %s", gst_video_format_to_string
          (GST_VIDEO_INFO_FORMAT (in_info)), in_w, in_h, err),
      ("libctsr: %s", ctsr_strerror (rc)));
  return FALSE;
}

/* ---------------------------------------------------------------------------------------- */
/* streaming */

/* libctsr's description of one side's YUV format and colorimetry */
static ctsr_yuv
gst_ctsr_upscale_yuv (const GstCtsrConvert * conv)
{
  ctsr_yuv y;

  memset (&y, 0, sizeof y);
  y.format = conv->format == GST_VIDEO_FORMAT_NV12 ? CTSR_YUV_NV12 : CTSR_YUV_I420;
  y.kr = conv->kr;
  y.kb = conv->kb;
  y.full_range = conv->full_range;
  y.chroma_cosited_h = conv->h_cosited;
  y.chroma_cosited_v = conv->v_cosited;
  return y;
}

/* The t a region of interest asks for: its params' "ctsrupscale" structure's "timestep"
 * (a double, float or int; above 1 clamped; negative: the region is ignored), else roi_t
 * (the roi-timestep property; negative: off). FALSE when the region sets no t. */
static gboolean
gst_ctsr_upscale_region_timestep (GstCtsrUpscale * self, GstVideoRegionOfInterestMeta * meta,
    gdouble roi_t, gfloat * t)
{
  GstStructure *params = gst_video_region_of_interest_meta_get_param (meta, ROI_PARAMS_NAME);
  const GValue *v = params ? gst_structure_get_value (params, "timestep") : NULL;
  gdouble d = roi_t;

  if (v) {
    if (G_VALUE_HOLDS_DOUBLE (v))
      d = g_value_get_double (v);
    else if (G_VALUE_HOLDS_FLOAT (v))
      d = g_value_get_float (v);
    else if (G_VALUE_HOLDS_INT (v))
      d = g_value_get_int (v);
    else
      GST_WARNING_OBJECT (self, "region %d: " ROI_PARAMS_NAME ".timestep is a %s, not a "
          "number: ignored", meta->id, G_VALUE_TYPE_NAME (v));
    if (isnan (d)) {
      GST_WARNING_OBJECT (self, "region %d: " ROI_PARAMS_NAME ".timestep is NaN: ignored",
          meta->id);
      d = roi_t;
    }
  }
  if (!(d >= 0.0))
    return FALSE;
  *t = (gfloat) MIN (d, 1.0);
  return TRUE;
}

/* Sets or clears libctsr's timestep map for this frame from the buffer's region-of-interest
 * metas: their t (see above) inside the regions (clipped to the frame; empty ones skipped),
 * `base` elsewhere, a ramp of `transition` input pixels (< 0: libctsr's default). The map
 * is only rebuilt when the regions, t or sizes differ from the last frame's; a frame
 * without regions costs a walk over its metas. 0 or a CTSR_E_* code with err. engine_lock
 * held. */
static gint
gst_ctsr_upscale_update_map_locked (GstCtsrUpscale * self, GstBuffer * buf, gint w, gint h,
    gfloat base, gdouble roi_t, gdouble transition, gchar * err, gsize errlen)
{
  GstVideoRegionOfInterestMeta *meta;
  gpointer state = NULL;
  GArray *regions = NULL;
  ctsr_timestep_region r;
  gfloat tr;
  gint rc = 0;

  while ((meta = (GstVideoRegionOfInterestMeta *) gst_buffer_iterate_meta_filtered (buf,
              &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    const guint64 x1 = MIN ((guint64) meta->x + meta->w, (guint64) w);
    const guint64 y1 = MIN ((guint64) meta->y + meta->h, (guint64) h);
    gfloat t;

    if (meta->x >= (guint) w || meta->y >= (guint) h || x1 <= meta->x || y1 <= meta->y)
      continue;                 /* empty, or outside the frame */
    if (!gst_ctsr_upscale_region_timestep (self, meta, roi_t, &t))
      continue;
    if (!regions)
      regions = g_array_new (FALSE, FALSE, sizeof (ctsr_timestep_region));
    r.x = (gint) meta->x;
    r.y = (gint) meta->y;
    r.w = (gint) (x1 - meta->x);
    r.h = (gint) (y1 - meta->y);
    r.t = t;
    g_array_append_val (regions, r);
  }

  if (!regions) {
    if (self->map_set) {
      GST_LOG_OBJECT (self, "no regions of interest: uniform t");
      rc = ctsr_set_timestep_map (self->ctx, NULL, 0, 0, 0, err, errlen);
      self->map_set = FALSE;
    }
    return rc;
  }

  tr = transition < 0 ? (gfloat) ctsr_default_transition (self->ctx) : (gfloat) transition;
  if (self->map_set && self->map_w == w && self->map_h == h && self->map_base == base
      && self->map_transition == tr && self->map_n_regions == (gint) regions->len
      && !memcmp (self->map_regions, regions->data, regions->len * sizeof r)) {
    g_array_free (regions, TRUE);
    return 0;                   /* the map of the last frame */
  }

  if (self->map_w != w || self->map_h != h || !self->map) {
    g_free (self->map);
    self->map = g_new (gfloat, (gsize) w * h);
    self->map_w = w;
    self->map_h = h;
  }
  GST_LOG_OBJECT (self, "%u regions of interest, base t %.3f, transition %.1f px",
      regions->len, base, tr);
  rc = ctsr_timestep_map_fill (self->map, w, h, (gsize) w * sizeof (gfloat), base,
      (const ctsr_timestep_region *) regions->data, (gint) regions->len, tr, err, errlen);
  if (!rc)
    rc = ctsr_set_timestep_map (self->ctx, self->map, w, h, (gsize) w * sizeof (gfloat), err,
        errlen);
  g_free (self->map_regions);
  self->map_n_regions = (gint) regions->len;
  self->map_regions = (ctsr_timestep_region *) g_array_free (regions, FALSE);
  self->map_base = base;
  self->map_transition = tr;
  self->map_set = rc == 0;
  return rc;
}

/* What a frame uses of the properties, read under the object lock */
typedef struct
{
  gfloat t;
  gboolean tile_changed;        /* tile_size to apply */
  gint tile_size;
  gdouble roi_t, roi_transition;
} GstCtsrFrameSettings;

/* Reads the properties for a frame and applies a changed timestep; engine_lock held */
static void
gst_ctsr_upscale_take_settings_locked (GstCtsrUpscale * self, GstCtsrFrameSettings * set)
{
  GST_OBJECT_LOCK (self);
  set->t = (gfloat) self->timestep;
  if (set->t != self->applied_timestep) {
    ctsr_set_timestep (self->ctx, set->t);
    self->applied_timestep = set->t;
  }
  set->tile_changed = self->tile_size_changed;
  set->tile_size = self->tile_size;
  self->tile_size_changed = FALSE;
  set->roi_t = self->roi_timestep;
  set->roi_transition = self->roi_transition;
  GST_OBJECT_UNLOCK (self);
}

/* I420 / NV12 planes through libctsr's shaders (ctsr_process_yuv); engine_lock held */
static gint
gst_ctsr_upscale_process_yuv_locked (GstCtsrUpscale * self, GstVideoFrame * in_frame,
    GstVideoFrame * out_frame, gchar * err, gsize errlen)
{
  const gint w = GST_VIDEO_FRAME_WIDTH (in_frame), h = GST_VIDEO_FRAME_HEIGHT (in_frame);
  const ctsr_yuv in_yuv = gst_ctsr_upscale_yuv (&self->in_conv);
  const ctsr_yuv out_yuv = gst_ctsr_upscale_yuv (&self->out_conv);
  const guint8 *in_planes[3] = { NULL, NULL, NULL };
  guint8 *out_planes[3] = { NULL, NULL, NULL };
  gsize in_strides[3] = { 0, 0, 0 }, out_strides[3] = { 0, 0, 0 };
  guint p;

  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (in_frame) && p < 3; p++) {
    in_planes[p] = GST_VIDEO_FRAME_PLANE_DATA (in_frame, p);
    in_strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE (in_frame, p);
  }
  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (out_frame) && p < 3; p++) {
    out_planes[p] = GST_VIDEO_FRAME_PLANE_DATA (out_frame, p);
    out_strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE (out_frame, p);
  }
  return ctsr_process_yuv (self->ctx, &in_yuv, in_planes, in_strides, w, h, &out_yuv,
      out_planes, out_strides, err, errlen);
}

/* RGBA in and out directly where the layout allows it, else through scratch frames (YUV
 * converted on the host when the device cannot do it in shaders): the input side and
 * ctsr_process_rgba8; the caller converts out_rgba into out_frame when the output is not
 * direct. engine_lock held. */
static gint
gst_ctsr_upscale_process_rgba_locked (GstCtsrUpscale * self, GstVideoFrame * in_frame,
    GstVideoFrame * out_frame, gchar * err, gsize errlen)
{
  const gint w = GST_VIDEO_FRAME_WIDTH (in_frame), h = GST_VIDEO_FRAME_HEIGHT (in_frame);
  const guint8 *src;
  guint8 *dst;
  gsize src_stride, dst_stride;

  if (self->in_conv.direct) {
    src = GST_VIDEO_FRAME_PLANE_DATA (in_frame, 0);
    src_stride = GST_VIDEO_FRAME_PLANE_STRIDE (in_frame, 0);
  } else {
    gst_ctsr_convert_to_rgba (&self->in_conv, in_frame, self->in_rgba, self->in_rgba_stride);
    src = self->in_rgba;
    src_stride = self->in_rgba_stride;
  }
  if (self->out_conv.direct) {
    dst = GST_VIDEO_FRAME_PLANE_DATA (out_frame, 0);
    dst_stride = GST_VIDEO_FRAME_PLANE_STRIDE (out_frame, 0);
  } else {
    dst = self->out_rgba;
    dst_stride = self->out_rgba_stride;
  }
  return ctsr_process_rgba8 (self->ctx, src, w, h, src_stride, dst, dst_stride, err, errlen);
}

static GstFlowReturn
gst_ctsr_upscale_transform_frame (GstVideoFilter * filter, GstVideoFrame * in_frame,
    GstVideoFrame * out_frame)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (filter);
  GstBaseTransform *trans = GST_BASE_TRANSFORM (filter);
  const gint w = GST_VIDEO_FRAME_WIDTH (in_frame), h = GST_VIDEO_FRAME_HEIGHT (in_frame);
  GstClockTime stream_time;
  gchar err[512] = "";
  GstCtsrFrameSettings set;
  gboolean yuv;
  gint rc;
  gfloat t;

  /* controlled properties first (timestep) */
  stream_time = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (in_frame->buffer));
  if (GST_CLOCK_TIME_IS_VALID (stream_time))
    gst_object_sync_values (GST_OBJECT (self), stream_time);

  if (GST_BUFFER_FLAG_IS_SET (in_frame->buffer, GST_BUFFER_FLAG_GAP)) {
    /* nothing to upscale: a black gap buffer of the output size */
    gst_ctsr_convert_fill_black (&self->out_conv, out_frame);
    GST_BUFFER_FLAG_SET (out_frame->buffer, GST_BUFFER_FLAG_GAP);
    return GST_FLOW_OK;
  }

  g_mutex_lock (&self->engine_lock);
  if (!self->ctx)
    goto no_engine;

  gst_ctsr_upscale_take_settings_locked (self, &set);
  t = set.t;
  if (set.tile_changed) {
    rc = ctsr_set_tile_size (self->ctx, set.tile_size, err, sizeof err);
    if (rc)
      goto tile_failed;
  }

  /* regions of interest: a timestep map, or the uniform t */
  rc = gst_ctsr_upscale_update_map_locked (self, in_frame->buffer, w, h, t, set.roi_t,
      set.roi_transition, err, sizeof err);
  if (rc)
    goto map_failed;

  /* I420 / NV12: converted in libctsr's shaders where the device can; else RGBA */
  yuv = self->in_conv.is_yuv && ctsr_supports_yuv (self->ctx);
  GST_LOG_OBJECT (self, "upscaling %dx%d at t=%.3f%s", w, h, t,
      yuv ? " (YUV in shaders)" : "");
  rc = yuv ? gst_ctsr_upscale_process_yuv_locked (self, in_frame, out_frame, err, sizeof err)
      : gst_ctsr_upscale_process_rgba_locked (self, in_frame, out_frame, err, sizeof err);
  if (rc)
    goto process_failed;
  g_mutex_unlock (&self->engine_lock);

  if (!yuv && !self->out_conv.direct)
    gst_ctsr_convert_from_rgba (&self->out_conv, self->out_rgba, self->out_rgba_stride,
        out_frame);
  return GST_FLOW_OK;

no_engine:
  g_mutex_unlock (&self->engine_lock);
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL), ("no model loaded"));
  return GST_FLOW_NOT_NEGOTIATED;
map_failed:
  g_mutex_unlock (&self->engine_lock);
  GST_ELEMENT_ERROR (self, STREAM, FAILED,
      ("Cannot apply the regions of interest of a %dx%d frame: %s", w, h, err),
      ("libctsr: %s", ctsr_strerror (rc)));
  return GST_FLOW_ERROR;
tile_failed:
  g_mutex_unlock (&self->engine_lock);
  GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
      ("Invalid tile size %d: %s", set.tile_size, err),
      ("libctsr: %s", ctsr_strerror (rc)));
  return GST_FLOW_ERROR;
process_failed:
  g_mutex_unlock (&self->engine_lock);
  GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Upscaling a %dx%d frame failed: %s", w, h, err),
      ("libctsr: %s", ctsr_strerror (rc)));
  return GST_FLOW_ERROR;
}

/* GstVideoFilter maps the frames and, when a buffer is smaller than its caps say (or than
 * its video meta describes), only warns and returns OK, which pushes the output buffer
 * unwritten (zeros or an earlier frame). Such a buffer is an error here. */
static GstFlowReturn
gst_ctsr_upscale_transform (GstBaseTransform * trans, GstBuffer * inbuf, GstBuffer * outbuf)
{
  GstVideoFilter *filter = GST_VIDEO_FILTER (trans);
  GstVideoFrame frame;
  GstBuffer *bad;
  GstVideoInfo *info;

  if (!filter->negotiated)
    return GST_BASE_TRANSFORM_CLASS (parent_class)->transform (trans, inbuf, outbuf);
  if (!gst_video_frame_map (&frame, &filter->in_info, inbuf, GST_MAP_READ))
    goto bad_input;
  gst_video_frame_unmap (&frame);
  if (!gst_video_frame_map (&frame, &filter->out_info, outbuf, GST_MAP_WRITE))
    goto bad_output;
  gst_video_frame_unmap (&frame);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->transform (trans, inbuf, outbuf);

bad_input:
  bad = inbuf;
  info = &filter->in_info;
  goto short_buffer;
bad_output:
  bad = outbuf;
  info = &filter->out_info;
short_buffer:
  GST_ELEMENT_ERROR (trans, STREAM, FORMAT,
      ("Invalid %s buffer: %" G_GSIZE_FORMAT " bytes cannot hold a %dx%d %s frame "
          "(%" G_GSIZE_FORMAT " bytes, or the layout of its video meta)",
          bad == inbuf ? "input" : "output", gst_buffer_get_size (bad),
          GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info),
          gst_video_format_to_string (GST_VIDEO_INFO_FORMAT (info)),
          GST_VIDEO_INFO_SIZE (info)), (NULL));
  return GST_FLOW_ERROR;
}

/* Region-of-interest metas go downstream scaled to the output (ids, roi_type and params
 * kept). GstBaseTransform would drop them (they carry the video-size tag); their own scale
 * transform (GStreamer 1.22) drops the params, so the scaled copy is made here, once. Other
 * metas: GstVideoFilter's rule. */
static gboolean
gst_ctsr_upscale_transform_meta (GstBaseTransform * trans, GstBuffer * outbuf,
    GstMeta * meta, GstBuffer * inbuf)
{
  GstVideoFilter *filter = GST_VIDEO_FILTER (trans);

  if (meta->info->api == GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE) {
    GstVideoRegionOfInterestMeta *src = (GstVideoRegionOfInterestMeta *) meta, *dst;
    const gint in_w = GST_VIDEO_INFO_WIDTH (&filter->in_info);
    const gint in_h = GST_VIDEO_INFO_HEIGHT (&filter->in_info);
    const guint64 sx = in_w > 0 ? GST_VIDEO_INFO_WIDTH (&filter->out_info) / in_w : 1;
    const guint64 sy = in_h > 0 ? GST_VIDEO_INFO_HEIGHT (&filter->out_info) / in_h : 1;
    GList *l;

    dst = gst_buffer_add_video_region_of_interest_meta_id (outbuf, src->roi_type,
        (guint) MIN (src->x * sx, G_MAXUINT), (guint) MIN (src->y * sy, G_MAXUINT),
        (guint) MIN (src->w * sx, G_MAXUINT), (guint) MIN (src->h * sy, G_MAXUINT));
    if (dst) {
      dst->id = src->id;
      dst->parent_id = src->parent_id;
      for (l = src->params; l; l = l->next)
        gst_video_region_of_interest_meta_add_param (dst, gst_structure_copy (l->data));
    }
    return FALSE;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->transform_meta (trans, outbuf, meta, inbuf);
}

/* Pointer positions arrive in output coordinates; upstream wants input ones. */
static gboolean
gst_ctsr_upscale_src_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVideoFilter *filter = GST_VIDEO_FILTER (trans);
  gdouble x, y;

  if (GST_EVENT_TYPE (event) == GST_EVENT_NAVIGATION && filter->negotiated
      && GST_VIDEO_INFO_WIDTH (&filter->out_info) > 0
      && GST_VIDEO_INFO_HEIGHT (&filter->out_info) > 0
      && gst_navigation_event_get_coordinates (event, &x, &y)) {
    event = gst_event_make_writable (event);
    x = x * GST_VIDEO_INFO_WIDTH (&filter->in_info) / GST_VIDEO_INFO_WIDTH (&filter->out_info);
    y = y * GST_VIDEO_INFO_HEIGHT (&filter->in_info) /
        GST_VIDEO_INFO_HEIGHT (&filter->out_info);
    gst_navigation_event_set_coordinates (event, x, y);
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
}

/* ---------------------------------------------------------------------------------------- */
/* states */

static gboolean
gst_ctsr_upscale_start (GstBaseTransform * trans)
{
  /* model-location or device may have changed in READY: reload then */
  return gst_ctsr_upscale_open (GST_CTSR_UPSCALE (trans));
}

static gboolean
gst_ctsr_upscale_stop (GstBaseTransform * trans)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (trans);

  g_clear_pointer (&self->in_rgba, g_free);
  g_clear_pointer (&self->out_rgba, g_free);
  return TRUE;
}

static GstStateChangeReturn
gst_ctsr_upscale_change_state (GstElement * element, GstStateChange transition)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!gst_ctsr_upscale_open (self))
        goto open_failed;
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_NULL:
      g_mutex_lock (&self->engine_lock);
      gst_ctsr_upscale_close_locked (self);
      gst_ctsr_upscale_forget_failure_locked (self);
      g_mutex_unlock (&self->engine_lock);
      break;
    default:
      break;
  }
  return ret;

open_failed:
  return GST_STATE_CHANGE_FAILURE;
}

/* ---------------------------------------------------------------------------------------- */
/* properties */

static gboolean
gst_ctsr_upscale_ready_or_lower_locked (GstCtsrUpscale * self, const gchar * what)
{
  if (GST_STATE (self) <= GST_STATE_READY)
    return TRUE;
  GST_WARNING_OBJECT (self, "%s can only be changed in the NULL or READY state", what);
  return FALSE;
}

static void
gst_ctsr_upscale_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_TIMESTEP:
      self->timestep = g_value_get_double (value);
      break;
    case PROP_MODEL_LOCATION:{
      const gchar *location = g_value_get_string (value);

      if (!gst_ctsr_upscale_ready_or_lower_locked (self, "model-location"))
        break;
      g_free (self->model_location);
      self->model_location = location && *location ? g_strdup (location) :
          default_model_location ();
      self->config_generation++;
      self->scale = 0;
      break;
    }
    case PROP_DEVICE:
      if (!gst_ctsr_upscale_ready_or_lower_locked (self, "device"))
        break;
      self->device = g_value_get_int (value);
      self->config_generation++;
      self->scale = 0;
      break;
    case PROP_TILE_SIZE:
      self->tile_size = g_value_get_int (value);
      self->tile_size_changed = TRUE;
      break;
    case PROP_ROI_TIMESTEP:
      self->roi_timestep = g_value_get_double (value);
      break;
    case PROP_ROI_TRANSITION:
      self->roi_transition = g_value_get_double (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_ctsr_upscale_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_TIMESTEP:
      g_value_set_double (value, self->timestep);
      break;
    case PROP_MODEL_LOCATION:
      g_value_set_string (value, self->model_location);
      break;
    case PROP_DEVICE:
      g_value_set_int (value, self->device);
      break;
    case PROP_DEVICE_NAME:
      g_value_set_string (value, self->device_name);
      break;
    case PROP_SCALE:
      g_value_set_int (value, self->scale);
      break;
    case PROP_TILE_SIZE:
      g_value_set_int (value, self->tile_size);
      break;
    case PROP_ROI_TIMESTEP:
      g_value_set_double (value, self->roi_timestep);
      break;
    case PROP_ROI_TRANSITION:
      g_value_set_double (value, self->roi_transition);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---------------------------------------------------------------------------------------- */

static void
gst_ctsr_upscale_finalize (GObject * object)
{
  GstCtsrUpscale *self = GST_CTSR_UPSCALE (object);

  if (self->ctx)
    ctsr_context_destroy (self->ctx);
  g_free (self->failed_path);
  g_free (self->failed_message);
  g_free (self->model_location);
  g_free (self->device_name);
  g_free (self->in_rgba);
  g_free (self->out_rgba);
  g_free (self->map);
  g_free (self->map_regions);
  g_mutex_clear (&self->engine_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_ctsr_upscale_class_init (GstCtsrUpscaleClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  gchar *default_model = default_model_location ();

  GST_DEBUG_CATEGORY_INIT (gst_ctsr_upscale_debug, "ctsrupscale", 0,
      "CTSR neural-network upscaler");

  gobject_class->set_property = gst_ctsr_upscale_set_property;
  gobject_class->get_property = gst_ctsr_upscale_get_property;
  gobject_class->finalize = gst_ctsr_upscale_finalize;

  g_object_class_install_property (gobject_class, PROP_TIMESTEP,
      g_param_spec_double ("timestep", "Timestep",
          "Trade-off of the output: 0 = fidelity (closest to the source), "
          "1 = realness (natural detail)", 0.0, 1.0, DEFAULT_TIMESTEP,
          G_PARAM_READWRITE | GST_PARAM_CONTROLLABLE | GST_PARAM_MUTABLE_PLAYING |
          G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_MODEL_LOCATION,
      g_param_spec_string ("model-location", "Model location",
          "Model file (.safetensors); default: $CTSR_MODEL_PATH when set, else (plugin "
          "loaded from its build directory) the source tree's models/ctsr-x2.safetensors, "
          "else the installed ctsr-x2.safetensors. Loaded at the NULL to READY "
          "state change", default_model,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS));
  g_free (default_model);
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_int ("device", "Device",
          "Vulkan device index (-1: automatic, discrete GPU, then integrated, then CPU)",
          -1, G_MAXINT, DEFAULT_DEVICE,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_DEVICE_NAME,
      g_param_spec_string ("device-name", "Device name",
          "Name of the Vulkan device in use (NULL until the model is loaded)", NULL,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_SCALE,
      g_param_spec_int ("scale", "Scale",
          "Upscaling factor of the loaded model (0 until it is loaded)", 0, G_MAXINT, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_TILE_SIZE,
      g_param_spec_int ("tile-size", "Tile size",
          "Edge of the input tiles in pixels (0: automatic from the device memory budget)",
          0, G_MAXINT, DEFAULT_TILE_SIZE,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_ROI_TIMESTEP,
      g_param_spec_double ("roi-timestep", "ROI timestep",
          "Timestep inside the regions of interest (GstVideoRegionOfInterestMeta) that carry "
          "no own \"" ROI_PARAMS_NAME "\" params with a \"timestep\"; -1: such regions "
          "are ignored. The timestep property applies outside the regions", -1.0, 1.0,
          DEFAULT_ROI_TIMESTEP,
          G_PARAM_READWRITE | GST_PARAM_CONTROLLABLE | GST_PARAM_MUTABLE_PLAYING |
          G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_ROI_TRANSITION,
      g_param_spec_double ("roi-transition", "ROI transition",
          "Width in input pixels of the smooth ramp of timestep around each region of "
          "interest (0: hard edges); -1: automatic, the model's receptive field (32 for "
          "ctsr-x2, 16 for ctsr-x2-tiny)", -1.0, 4096.0, DEFAULT_ROI_TRANSITION,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "CTSR super-resolution upscaler", "Filter/Effect/Video/Scaler",
      "Upscales video by the model's factor with a small neural network run on Vulkan "
      "compute (libctsr); timestep trades fidelity (0) for realness (1)",
      "gst-ctsr developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_change_state);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_stop);
  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_transform_caps);
  trans_class->fixate_caps = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_fixate_caps);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_src_event);
  trans_class->transform = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_transform);
  trans_class->transform_meta = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_transform_meta);
  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_set_info);
  filter_class->transform_frame = GST_DEBUG_FUNCPTR (gst_ctsr_upscale_transform_frame);
}

static void
gst_ctsr_upscale_init (GstCtsrUpscale * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);

  self->timestep = DEFAULT_TIMESTEP;
  self->model_location = default_model_location ();
  self->device = DEFAULT_DEVICE;
  self->tile_size = DEFAULT_TILE_SIZE;
  self->roi_timestep = DEFAULT_ROI_TIMESTEP;
  self->roi_transition = DEFAULT_ROI_TRANSITION;
  self->applied_timestep = -1.0f;
  g_mutex_init (&self->engine_lock);

  gst_base_transform_set_qos_enabled (trans, TRUE);
  gst_base_transform_set_gap_aware (trans, TRUE);
}

/* ---------------------------------------------------------------------------------------- */

static gboolean
plugin_init (GstPlugin * plugin)
{
  if (!plugin_filename && gst_plugin_get_filename (plugin))
    plugin_filename = g_strdup (gst_plugin_get_filename (plugin));
  return GST_ELEMENT_REGISTER (ctsrupscale, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, ctsr,
    "Controllable super-resolution (CTSR) on Vulkan compute",
    plugin_init, VERSION, "MIT/X11", GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
