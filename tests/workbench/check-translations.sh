#!/usr/bin/env bash
# Every translatable string of the files in po/POTFILES.in has a translation in each language
# of po/LINGUAS, and each .po compiles cleanly (msgfmt --check).
#   check-translations.sh SOURCE_DIR
set -eu
src=$1
for tool in xgettext msgcmp msgfmt; do
  command -v "$tool" >/dev/null || { echo "check-translations: $tool missing; skipping" >&2; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$src"
grep -v -e '^#' -e '^[[:space:]]*$' po/POTFILES.in > "$tmp/potfiles"
# The keywords of meson's i18n.gettext(preset: 'glib').
xgettext --from-code=UTF-8 --add-comments --keyword=_ --keyword=N_ --keyword=C_:1c,2 \
  --keyword=NC_:1c,2 --keyword=g_dcgettext:2 --keyword=g_dngettext:2,3 \
  --keyword=g_dpgettext2:2c,3 -f "$tmp/potfiles" -o "$tmp/fathom.pot"

status=0
for lang in $(grep -v '^#' po/LINGUAS); do
  if ! msgfmt --check -o /dev/null "po/$lang.po"; then
    echo "check-translations: po/$lang.po does not compile" >&2
    status=1
  fi
  if ! msgcmp "po/$lang.po" "$tmp/fathom.pot"; then
    echo "check-translations: po/$lang.po lacks translations (above)" >&2
    status=1
  fi
done
exit $status
