#!/bin/bash
# What site.yml leaves on a host (test/support/site-lab.ts runs it over SSH to compare two hosts).
set -u
echo "## packages"
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' docker.io nginx ufw rsyslog curl sudo prometheus prometheus-blackbox-exporter prometheus-alertmanager certbot 2>/dev/null | sort
echo "## files"
for f in /etc/docker/daemon.json /etc/sudoers.d/dyce-deploy /etc/nginx/sites-available/dyce-app.conf /etc/nginx/sites-enabled/dyce-app.conf /etc/nginx/sites-enabled/default /etc/nginx/tls /etc/nginx/tls/dyce-app.crt /etc/nginx/tls/dyce-app.key /var/lib/loki /var/lib/loki/config /srv/app/static /var/www/letsencrypt /etc/prometheus/prometheus.yml /etc/prometheus/blackbox.yml /etc/prometheus/dyce.rules.yml /etc/prometheus/alertmanager.yml /etc/prometheus/probe-ca.crt /home/deploy/.ssh/authorized_keys; do
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"
  elif [ -d "$f" ]; then echo "$f dir $(stat -c '%a %U:%G' "$f")"
  elif [ -f "$f" ]; then echo "$f file $(stat -c '%a %U:%G' "$f") $(sha256sum < "$f" | cut -c1-16)"
  else echo "$f absent"; fi
done
for f in /etc/docker/daemon.json /etc/nginx/sites-available/dyce-app.conf /etc/prometheus/prometheus.yml /etc/prometheus/blackbox.yml /etc/prometheus/dyce.rules.yml; do
  [ -f "$f" ] && { echo "## content $f"; cat "$f"; }
done
echo "## ufw"
ufw status verbose
echo "## services"
for s in docker nginx rsyslog prometheus prometheus-blackbox-exporter prometheus-alertmanager; do echo "$s $(systemctl is-active $s) $(systemctl is-enabled $s 2>/dev/null)"; done
echo "## users"
getent passwd deploy | cut -d: -f1,6,7; id -nG deploy
echo "## docker"
docker ps -a --format '{{.Names}} {{.Image}} {{.State}} {{.Ports}}' | sort
docker plugin ls --format '{{.Name}} {{.Enabled}}' 2>/dev/null
