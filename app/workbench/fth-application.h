/* fth-application.h: the Fathom workbench application (io.github.fathom.Workbench). */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define FTH_APPLICATION_ID "io.github.fathom.Workbench"

#define FTH_TYPE_APPLICATION (fth_application_get_type())
G_DECLARE_FINAL_TYPE(FthApplication, fth_application, FTH, APPLICATION, AdwApplication)

/* FLAGS are added to G_APPLICATION_HANDLES_OPEN (tests pass G_APPLICATION_NON_UNIQUE). */
FthApplication *fth_application_new(GApplicationFlags flags);

G_END_DECLS
