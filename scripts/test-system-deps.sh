#!/usr/bin/env bash
# System packages some tests use as independent references: QGIS (python3-qgis: outputs open styled in a real
# QGIS) and GDAL's command-line tools (gdaldem: slope/aspect reference). They are Debian packages, not PyPI
# ones. Installed when this runs as root with apt-get (CI machines); elsewhere the tests that need them skip.
set -u
need=()
QT_QPA_PLATFORM=offscreen /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 || need+=(python3-qgis qgis-providers)
command -v gdaldem >/dev/null 2>&1 || need+=(gdal-bin)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system test references: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/suitability-apt.log 2>&1; then
        apt-get update -q >>/tmp/suitability-apt.log 2>&1
        apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/suitability-apt.log 2>&1 \
            || echo "could not install ${need[*]} (see /tmp/suitability-apt.log); the tests that need them will skip"
    fi
else
    echo "note: ${need[*]} not installed (needs root and apt-get); the QGIS/gdaldem comparison tests will skip"
fi
exit 0
