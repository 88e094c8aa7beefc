#!/usr/bin/env bash
# System packages pseval needs on Debian/Ubuntu: WordNet 3.0 data and Python's venv module.
set -euo pipefail
need=()
wordnet_found=0
for d in "${PSEVAL_WORDNET_DIR:-/nonexistent}" /usr/share/wordnet /usr/local/share/wordnet \
         "$HOME/nltk_data/corpora/wordnet" /usr/share/nltk_data/corpora/wordnet /usr/local/share/nltk_data/corpora/wordnet; do
  if [ -f "$d/data.noun" ]; then wordnet_found=1; break; fi
done
[ "$wordnet_found" = 1 ] || need+=(wordnet-base)
# Headless Chromium renders the HTML report in the tests (pages load offline).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "pseval needs: ${need[*]}. Install WordNet 3.0 (or run python -m nltk.downloader wordnet) and python3-venv." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
