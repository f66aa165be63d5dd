#!/usr/bin/env bash
# Install napari-madgan and everything a fresh Debian/Ubuntu machine lacks:
# Xvfb and the X/Qt libraries napari needs, a CPU build of torch when none is
# installed, then the package itself with its Qt binding and test tools, and
# pydeface's average head (data only) for the phantom heads, and Colin27 (mricron-data)
# as a real anatomy for the phantoms.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0 libgl1 libegl1
  libdbus-1-3 libfontconfig1
  mricron-data)  # Colin27 (ch2.nii.gz, ch2bet.nii.gz): a real brain for `madgan phantom --anatomy colin27`

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "Installing system packages: ${missing[*]}"
  $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

PYTHON=${PYTHON:-python3}
# A plain `torch` requirement would pull a multi-GB CUDA build on a machine with
# no torch; take the CPU wheel first. GPU users install their CUDA torch beforehand.
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q "torch==2.13.0"
fi
"$PYTHON" -m pip install -q -e ".[all,test]"
# Only pydeface's data (the average head of the phantom heads) is used: skip its nipype chain.
"$PYTHON" -m pip install -q --no-deps "pydeface==2.1.0"
echo "napari-madgan installed."
