#!/bin/sh
# Generates configure and the Makefile.in files; they are never committed.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf --force --install --warnings=no-portability
