/* test-notifications.c: a long job's end reaches the desktop as a notification when the window
 * is not active. The test runs its own D-Bus session bus (dbus-daemon) with a stand-in
 * notification server (org.freedesktop.Notifications) that records what it is sent. */
#include "fth-jobs-panel.h"
#include "workbench-test-util.h"

#define TIMEOUT_MS 20000

static FthApplication *app;

static const char notifications_xml[] =
  "<node>"
  "  <interface name='org.freedesktop.Notifications'>"
  "    <method name='Notify'>"
  "      <arg type='s' direction='in'/><arg type='u' direction='in'/>"
  "      <arg type='s' direction='in'/><arg type='s' direction='in'/>"
  "      <arg type='s' direction='in'/><arg type='as' direction='in'/>"
  "      <arg type='a{sv}' direction='in'/><arg type='i' direction='in'/>"
  "      <arg type='u' direction='out'/>"
  "    </method>"
  "    <method name='CloseNotification'><arg type='u' direction='in'/></method>"
  "    <method name='GetCapabilities'><arg type='as' direction='out'/></method>"
  "  </interface>"
  "</node>";

typedef struct {
  guint count;
  char *summary, *body;
} Received;

static void
server_method_call(GDBusConnection *connection, const char *sender, const char *path,
                   const char *interface, const char *method, GVariant *parameters,
                   GDBusMethodInvocation *invocation, gpointer user_data)
{
  Received *received = user_data;
  if (g_strcmp0(method, "Notify") == 0) {
    received->count++;
    g_free(received->summary);
    g_free(received->body);
    g_variant_get_child(parameters, 3, "s", &received->summary);
    g_variant_get_child(parameters, 4, "s", &received->body);
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(u)", received->count));
  } else if (g_strcmp0(method, "GetCapabilities") == 0) {
    const char *caps[] = { "body", NULL };
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(^as)", caps));
  } else {
    g_dbus_method_invocation_return_value(invocation, NULL);
  }
}

static gboolean
flag_set(gpointer data)
{
  return *(gboolean *)data;
}

static void
name_acquired(GDBusConnection *connection, const char *name, gpointer user_data)
{
  *(gboolean *)user_data = TRUE;
}

static gboolean
window_inactive(gpointer data)
{
  return !gtk_window_is_active(data);
}

static gboolean
received_one(gpointer data)
{
  return ((Received *)data)->count > 0;
}

static gboolean
announced_one(gpointer data)
{
  return *(guint *)data > 0;
}

static gboolean
brief_job(FthJob *job, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_usleep(20000);
  return TRUE;
}

static void
on_job_announced(FthWindow *window, const char *title, const char *outcome, gboolean notified,
                 gpointer user_data)
{
  guint *count = user_data;
  g_assert_true(notified);
  (*count)++;
}

/* Another window has the focus when the job ends: the server gets the job's title and
 * outcome. */
static void
test_notification_when_inactive(gconstpointer bus_address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) server = g_dbus_connection_new_for_address_sync(
    bus_address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error(error);
  g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(notifications_xml, &error);
  g_assert_no_error(error);
  Received received = { 0 };
  const GDBusInterfaceVTable vtable = { server_method_call, NULL, NULL, { 0 } };
  guint object = g_dbus_connection_register_object(server, "/org/freedesktop/Notifications",
                                                   node->interfaces[0], &vtable, &received,
                                                   NULL, &error);
  g_assert_no_error(error);
  gboolean owned = FALSE;
  guint name = g_bus_own_name_on_connection(server, "org.freedesktop.Notifications",
                                            G_BUS_NAME_OWNER_FLAGS_NONE, name_acquired, NULL,
                                            &owned, NULL);
  g_assert_true(fth_test_spin_until(flag_set, &owned, TIMEOUT_MS));

  FthWindow *window = fth_window_new(app);
  gtk_window_present(GTK_WINDOW(window));
  fth_window_set_long_job_seconds(window, 0);
  guint announced = 0;
  g_signal_connect(window, "job-announced", G_CALLBACK(on_job_announced), &announced);
  GtkWidget *other = gtk_window_new();
  gtk_window_present(GTK_WINDOW(other));
  g_assert_true(fth_test_spin_until(window_inactive, window, TIMEOUT_MS));

  g_autoptr(GPtrArray) panels = fth_test_find_widgets(GTK_WIDGET(window), FTH_TYPE_JOBS_PANEL);
  g_autoptr(FthJob) job = fth_job_new("test", brief_job, NULL, NULL);
  fth_jobs_panel_add(g_ptr_array_index(panels, 0), job, "A long job");
  fth_job_start(job);
  g_assert_true(fth_test_spin_until(announced_one, &announced, TIMEOUT_MS));
  g_assert_true(fth_test_spin_until(received_one, &received, TIMEOUT_MS));
  g_assert_cmpuint(received.count, ==, 1);
  g_assert_cmpstr(received.summary, ==, "A long job");
  g_assert_cmpstr(received.body, ==, "Finished");

  gtk_window_destroy(GTK_WINDOW(other));
  gtk_window_destroy(GTK_WINDOW(window));
  fth_test_spin_for(100);
  g_bus_unown_name(name);
  g_dbus_connection_unregister_object(server, object);
  g_free(received.summary);
  g_free(received.body);
}

int
main(int argc, char **argv)
{
  if (!fth_test_under_xvfb("test-notifications"))
    return 77;
  g_autofree char *daemon = g_find_program_in_path("dbus-daemon");
  if (daemon == NULL) {
    g_printerr("test-notifications: dbus-daemon is not installed; skipping\n");
    return 77;
  }
  /* The private bus first: the application registers on it. (Not GTestDBus: its teardown
   * waits for the session connection to be freed, which GTK keeps to the end.) */
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) bus = g_subprocess_new(
    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, daemon,
    "--session", "--nofork", "--print-address", NULL);
  if (bus == NULL)
    g_error("cannot start dbus-daemon: %s", error->message);
  g_autoptr(GDataInputStream) out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(bus));
  g_autofree char *address = g_data_input_stream_read_line(out, NULL, NULL, &error);
  if (address == NULL)
    g_error("dbus-daemon printed no address: %s", error != NULL ? error->message : "end of output");
  g_setenv("DBUS_SESSION_BUS_ADDRESS", address, TRUE);
  gtk_test_init(&argc, &argv, NULL);

  app = fth_test_application_new();

  g_test_add_data_func("/notifications/when-inactive", address,
                       test_notification_when_inactive);
  int status = g_test_run();
  g_clear_object(&app);
  g_subprocess_force_exit(bus);
  g_subprocess_wait(bus, NULL, NULL);
  return status;
}
