/* fth-window.h: a workbench window: the start page, or one open project. */
#pragma once

#include "fth-application.h"

#include <fathom/item-list.h>

G_BEGIN_DECLS

#define FTH_TYPE_WINDOW (fth_window_get_type())
G_DECLARE_FINAL_TYPE(FthWindow, fth_window, FTH, WINDOW, AdwApplicationWindow)

FthWindow *fth_window_new(FthApplication *app);

/* Opens the project in DIR on a worker thread; the window shows a spinner meanwhile and then
 * the project, or a dialog naming DIR and what is wrong (emitting "project-opened" or
 * "open-failed" with the message). A project already open stays until the new one is ready. */
void fth_window_open_project(FthWindow *self, GFile *dir);
void fth_window_close_project(FthWindow *self);
/* Makes DIR (created if missing) a project, opens it, and imports the media in it. */
void fth_window_create_project(FthWindow *self, GFile *dir);
/* Imports FILES (files and folders) into the open project as a job shown in the sidebar; the
 * grid, counts and labels refresh when it ends. */
void fth_window_import(FthWindow *self, GFile *const *files, guint n_files);

/* Actions (win.*): open, new-project, import (file choosers), close-project, find, set-label (int64 label id, 0 to clear: the
 * class of the selected grid item, or in the item view the selected box's label or the item's
 * class), show-grid, next-item, previous-item, undo, redo (across items), toggle-sidebar,
 * zoom-in, zoom-out (thumbnails, or the picture in the item view), zoom-fit, zoom-original,
 * tool (string state "box" or "polygon": what dragging or clicking on the picture draws; b and
 * p in the item view).
 * A label's hotkey activates set-label; in the item view a/d and the arrow keys move, Delete
 * removes the picked vertex of the selected polygon or else the selected box or polygon,
 * Escape cancels a box being drawn or goes back to the grid.
 * add-label and edit-label (int64 id) open the label dialog; activating a label in the
 * palette edits it.
 * "item-annotated" (item id) is emitted once an edit, undo or redo is saved and shown,
 * "labels-changed" once a label edit is, "error" (message) with every error toast, and
 * "job-announced" (title, outcome, notified) when a job that ran long ends: a toast while the
 * window is active, a desktop notification (GNotification) otherwise. */

/* Jobs running at least SECONDS (default 10) are announced when they end. */
void fth_window_set_long_job_seconds(FthWindow *self, double seconds);

gboolean fth_window_has_project(FthWindow *self);
/* The open project's store and its items (the grid's model), or NULL. */
FthStore *fth_window_get_store(FthWindow *self);
GListModel *fth_window_get_items(FthWindow *self);

G_END_DECLS
