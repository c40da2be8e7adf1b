#!/usr/bin/env bash
# Reading a bundle of PEM files from stdin: sections start with '# file: NAME'.
set -euo pipefail

# unpack_bundle DIR — writes each section of stdin to DIR/NAME, readable by root only.
unpack_bundle() {
  local dir=$1
  install -d -m 0700 "$dir"
  (umask 077 && awk -v dir="$dir" '/^# file: / {file = dir "/" $3; printf "" > file; next} file {print >> file}')
}

# install_if_changed SOURCE TARGET MODE
install_if_changed() {
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" "$1" "$2"
  fi
}
