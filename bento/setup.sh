#!/bin/sh
# Runs as root while the image is built (bentofile docker.setup_script): installs the `textclf`
# command, a shim for `python -m textclf` (the package itself ships in the bento's src/ and is
# found through PYTHONPATH, so none of the training dependencies are installed).
set -eu
cat > /usr/local/bin/textclf <<'SHIM'
#!/bin/sh
exec python3 -m textclf "$@"
SHIM
chmod 0755 /usr/local/bin/textclf
