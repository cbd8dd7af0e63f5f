/* fathom/import.h: bringing files into a project (engine/io).
 *
 * Sources are files and folders; folders are walked recursively in sorted (byte) order, so an
 * import is deterministic. Hidden entries (names starting with '.') and the project's own
 * database files are skipped. Each file's format is sniffed from its content (JPEG, PNG, WAV,
 * FLAC, Ogg, MP3, UTF-8 text) or, for files holding many records, from its name (.csv, .jsonl,
 * IDX: *-ubyte[.gz], *.idx[.gz]):
 *
 *   image     one item; width/height probed; with `verify` (the default) fully decoded, so a
 *             corrupt or truncated file is reported instead of stored
 *   audio     one item; rate and duration; with `verify` fully decoded
 *   text      one item per file, length in characters; invalid UTF-8 is reported with the
 *             reason and encodings to try
 *   CSV       one text item per row, the text inline, member = row index (0-based); the text
 *             column is `text_column`; the label column `label_column`, or when that is NULL a
 *             column named "label" if there is one; a label becomes a whole-item class
 *             annotation and the label is created when missing
 *   JSONL     likewise, one item per object with `jsonl_text_field` / `jsonl_label_field`
 *   IDX       an images file (3 dims, unsigned bytes) paired with the labels file of the same
 *             name (`X-images-idx3-ubyte[.gz]` with `X-labels-idx1-ubyte[.gz]`); one image item
 *             per record (path = the images file, member = record index, SHA-256 of the record
 *             bytes), class annotations from the labels file, labels named after the
 *             Fashion-MNIST classes when the path says "fashion" (case-insensitive), else "0",
 *             "1", ...; a name starting with "t10k" gives the test split, "train" the train split
 *
 * With `folder_labels`, a file at SOURCE/<class>/.../<file> under a folder source gets the label
 * <class> (created when missing) as a whole-item class annotation.
 *
 * Items are identified by content: a file or record whose SHA-256 is already in the project is
 * skipped and counted as a duplicate. A re-run is quick: a file already imported with the same
 * (path, member, size, mtime) is skipped before it is read or hashed.
 *
 * Nothing is half-written: an item and its annotations are added together or not at all, and
 * writes are committed in batches of `batch_size` items. Every file that cannot be imported is
 * listed in the report with its path and the reason, and the import goes on. A cancelled import
 * commits the items completed so far (the store stays consistent) and returns
 * G_IO_ERROR_CANCELLED; running it again completes it.
 *
 * Paths: files inside the project folder are stored relative to it. With `copy`, files outside
 * the project are first copied into <project>/media/ (a folder source to
 * media/<folder name>/..., a file source to media/<file name>) and the copies are imported.
 */
#pragma once

#include <fathom/jobs.h>
#include <fathom/store.h>

G_BEGIN_DECLS

#define FTH_IMPORT_ERROR (fth_import_error_quark())
GQuark fth_import_error_quark(void);

typedef enum {
  FTH_IMPORT_ERROR_SOURCE,   /* a source given on the command line does not exist */
  FTH_IMPORT_ERROR_FORMAT,   /* a file's format is not supported (used in problems) */
  FTH_IMPORT_ERROR_CONTENT,  /* a file's content is unusable (used in problems) */
  FTH_IMPORT_ERROR_COPY,     /* --copy could not place a file in media/ */
} FthImportError;

typedef struct {
  gboolean verify;               /* fully decode images and audio (default TRUE) */
  gboolean folder_labels;        /* SOURCE/<class>/<file> -> label <class> (default FALSE) */
  gboolean copy;                 /* copy files from outside the project into media/ first */
  const char *text_column;       /* CSV text column (default "text") */
  const char *label_column;      /* CSV label column (default NULL: "label" when present) */
  const char *jsonl_text_field;  /* default "text" */
  const char *jsonl_label_field; /* default "label"; objects without it get no annotation */
  FthSplit split;                /* split for items whose source does not decide (NONE) */
  guint batch_size;              /* items per transaction (default 1000) */
} FthImportOptions;

void fth_import_options_init(FthImportOptions *options);

typedef struct {
  char *path;    /* the file as given (absolute) */
  gint64 member; /* -1: the whole file; else the row/record index */
  char *reason;  /* what is wrong, e.g. "JPEG data ends early (truncated at byte 1024)" */
} FthImportProblem;

typedef struct {
  guint64 files;             /* files examined */
  guint64 added;             /* items added */
  guint64 added_images, added_audio, added_text;
  guint64 duplicates;        /* skipped: content already in the project */
  guint64 existing;          /* skipped: already imported (same path, member, size, mtime) */
  guint64 annotations;       /* annotations added */
  guint64 labels_created;
  guint64 copied;            /* files copied into media/ */
  GPtrArray *problems;       /* FthImportProblem*, in the order met */
  double elapsed_s;
} FthImportReport;

FthImportReport *fth_import_report_new(void);
void fth_import_report_free(FthImportReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FthImportReport, fth_import_report_free)

/* Progress: `done` of `total` work units (bytes of the sources; records advance through their
 * file), the file being read, and the running report. Called on the importing thread. */
typedef void (*FthImportProgressFunc)(gint64 done, gint64 total, const char *current,
                                      const FthImportReport *report, gpointer user_data);

/* Imports SOURCES (NULL-terminated, absolute or relative to the working directory) into STORE.
 * Returns TRUE when the import ran to the end, also with problems (see the report); FALSE with
 * ERROR when it could not run (a missing source: FTH_IMPORT_ERROR_SOURCE; a store error) or was
 * cancelled (G_IO_ERROR_CANCELLED). *REPORT_OUT (may be NULL) receives the report in every
 * case. */
gboolean fth_import_run(FthStore *store, const char *const *sources,
                        const FthImportOptions *options, GCancellable *cancellable,
                        FthImportProgressFunc progress, gpointer progress_data,
                        FthImportReport **report_out, GError **error);

/* The same as a job named "import": progress events (at most every 100 ms, and at the end)
 * carry the step/total above and the metrics "added", "duplicates", "existing", "problems";
 * each problem is sent as soon as it is found, as an event with the message
 * "PATH[:MEMBER]: REASON". Single files are read, hashed and decoded on the shared intra-op
 * pool (fathom/core.h). The options are copied. After the job has finished,
 * fth_import_job_get_report() returns its report (owned by the job). */
FthJob *fth_import_job_new(FthStore *store, const char *const *sources,
                           const FthImportOptions *options);
const FthImportReport *fth_import_job_get_report(FthJob *job);

/* The Fashion-MNIST class names, index = label value. */
extern const char *const fth_fashion_mnist_classes[10];

G_END_DECLS
