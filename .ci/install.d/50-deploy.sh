#!/usr/bin/env bash
# Deployment/security area: systemd (systemd-analyze security/verify, systemd-sysusers,
# systemd-tmpfiles), prometheus (the real scraper in tests/tests/prometheus_scrape.rs),
# libcap2-bin (capsh/getpcaps), util-linux (setpriv for the unit-equivalent test), passwd
# (useradd/groupadd), iproute2 (netns/veth), iputils-ping (traffic in deploy_users.rs),
# curl (TLS client in tests/tests/security_tls.rs, netns client in security_limits.rs),
# openssl (self-signed test certificate).
set -euo pipefail
apt-get install -y -qq --no-install-recommends \
  systemd prometheus libcap2-bin util-linux passwd iproute2 iputils-ping curl openssl ca-certificates >/dev/null
