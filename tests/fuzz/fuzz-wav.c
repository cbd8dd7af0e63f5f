/* libFuzzer target: WAV decoding from memory (our RIFF header checks, then GStreamer's wavparse,
 * audioconvert and audioresample). Inputs that are not RIFF/WAVE are skipped so the run stays on
 * the WAV path instead of wandering through every GStreamer type finder. */
#include <fathom/media.h>

int LLVMFuzzerTestOneInput(const guint8 *data, size_t len);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t len)
{
  if (fth_media_sniff(data, len) != FTH_MEDIA_FORMAT_WAV)
    return 0;
  FthAudio audio;
  GError *error = NULL;
  /* The input's length picks native rate or 16 kHz mono. */
  gboolean resample = len % 2 == 1;
  if (fth_audio_decode_memory(data, len, "fuzz.wav", resample ? 16000 : 0, resample, &audio,
                              &error))
    fth_audio_clear(&audio);
  else
    g_error_free(error);
  return 0;
}
