#!/usr/bin/env bash
# Deployment/security area: systemd (systemd-analyze security/verify, systemd-sysusers,
# systemd-tmpfiles), prometheus (the real scraper in tests/tests/prometheus_scrape.rs),
# libcap2-bin (capsh/getpcaps), util-linux (setpriv for the unit-equivalent test), passwd
# (useradd/groupadd), iproute2 (netns/veth), curl (TLS client in tests/tests/security_tls.rs),
# openssl (self-signed test certificate).
set -euo pipefail
apt-get install -y -qq --no-install-recommends \
  systemd prometheus libcap2-bin util-linux passwd iproute2 curl openssl ca-certificates >/dev/null
