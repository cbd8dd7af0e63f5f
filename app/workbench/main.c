/* fathom-workbench: the GTK workbench. `fathom-workbench [PROJECT_DIR...]` */
#include "fth-application.h"
#include "fth-config.h"

#include <glib/gi18n.h>
#include <locale.h>

int
main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, FTH_LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  textdomain(GETTEXT_PACKAGE);

  g_autoptr(FthApplication) app = fth_application_new(G_APPLICATION_DEFAULT_FLAGS);
  return g_application_run(G_APPLICATION(app), argc, argv);
}
