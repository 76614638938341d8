/* ctsrupscale: GStreamer video filter that upscales frames with libctsr. */
#ifndef GST_CTSR_UPSCALE_H
#define GST_CTSR_UPSCALE_H

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

#include "ctsr.h"
#include "ctsrconvert.h"

G_BEGIN_DECLS

#define GST_TYPE_CTSR_UPSCALE (gst_ctsr_upscale_get_type ())
G_DECLARE_FINAL_TYPE (GstCtsrUpscale, gst_ctsr_upscale, GST, CTSR_UPSCALE, GstVideoFilter)

struct _GstCtsrUpscale
{
  GstVideoFilter parent;

  /* properties; object lock */
  gdouble timestep;
  gchar *model_location;
  gint device;
  gint tile_size;
  gboolean tile_size_changed;  /* apply at the next frame */
  guint config_generation;     /* bumped when model-location or device change */
  gint scale;                  /* of the loaded model; 0 when none */
  gchar *device_name;          /* of the open context; NULL when none */

  /* libctsr; engine_lock (taken before the object lock when both are held) */
  GMutex engine_lock;
  ctsr_context *ctx;
  guint ctx_generation;        /* config the context was opened with */
  gboolean failed;             /* opening failed for failed_generation: not retried */
  guint failed_generation;
  gint failed_code;            /* CTSR_E_* */
  gchar *failed_path;
  gchar *failed_message;
  gfloat applied_timestep;     /* last value given to ctsr_set_timestep; < 0: none */

  /* region-of-interest timestep (properties: object lock) */
  gdouble roi_timestep;        /* t of ROI metas without own params; < 0: off */
  gdouble roi_transition;      /* ramp width in input pixels; < 0: automatic */
  /* the timestep map in use (engine_lock): its regions, base t, ramp and size; NULL regions
   * and map_set FALSE when frames use the uniform path */
  gboolean map_set;
  ctsr_timestep_region *map_regions;
  gint map_n_regions;
  gfloat map_base, map_transition;
  gint map_w, map_h;
  gfloat *map;                 /* scratch map of map_w x map_h */

  /* negotiated; streaming thread */
  GstCtsrConvert in_conv, out_conv;
  guint8 *in_rgba, *out_rgba;  /* scratch RGBA8 frames for the non-RGBA formats */
  gsize in_rgba_stride, out_rgba_stride;
};

GST_ELEMENT_REGISTER_DECLARE (ctsrupscale);

G_END_DECLS

#endif
