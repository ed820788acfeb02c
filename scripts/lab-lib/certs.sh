# shellcheck shell=bash
# scripts/lab-lib/certs.sh — lab CA and server certificate (sourced by scripts/lab).
#
# Creates, once, with the openssl CLI:
#   $LAB/ca.pem, $LAB/ca.key            lab CA (RSA 2048, 10 years)
#   $LAB/fullchain.pem, $LAB/privkey.pem  leaf for mail.example.test (RSA 2048, 825 days),
#                                        SAN DNS:mail.example.test, DNS:localhost, IP:127.0.0.1
#   $LAB/dh.pem                          RFC 7919 ffdhe2048 parameters (Dovecot ssl_dh)
# RSA rather than ECDSA so that legacy-TLS clients in tests can still negotiate.
# Regenerated only when missing, expired within a day, or not signed by ca.pem.
# Never committed: the lab dir lives outside the repository.

lab_certs() {
  local tmp
  umask 077
  if [ -s "$LAB/ca.pem" ] && [ -s "$LAB/ca.key" ] && [ -s "$LAB/fullchain.pem" ] && [ -s "$LAB/privkey.pem" ] \
     && openssl x509 -checkend 86400 -noout -in "$LAB/fullchain.pem" >/dev/null 2>&1 \
     && openssl verify -CAfile "$LAB/ca.pem" "$LAB/fullchain.pem" >/dev/null 2>&1; then
    :
  else
    lab_log "generating lab CA and server certificate in $LAB"
    tmp=$(mktemp -d "$LAB/.certs.XXXXXX")
    cat > "$tmp/ca.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = mailshim lab
CN = mailshim lab CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
    cat > "$tmp/leaf.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
O = mailshim lab
CN = mail.example.test
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:mail.example.test, DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
CNF
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -config "$tmp/ca.cnf" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>"$tmp/err" \
      || { cat "$tmp/err" >&2; lab_die "openssl: CA generation failed"; }
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
      -config "$tmp/leaf.cnf" -keyout "$tmp/privkey.pem" -out "$tmp/leaf.csr" 2>"$tmp/err" \
      || { cat "$tmp/err" >&2; lab_die "openssl: leaf key/CSR generation failed"; }
    openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -sha256 -days 825 \
      -extfile "$tmp/leaf.cnf" -extensions v3_leaf -out "$tmp/fullchain.pem" 2>"$tmp/err" \
      || { cat "$tmp/err" >&2; lab_die "openssl: leaf signing failed"; }
    chmod 0644 "$tmp/ca.pem" "$tmp/fullchain.pem"
    chmod 0600 "$tmp/ca.key" "$tmp/privkey.pem"
    mv -f "$tmp/ca.key" "$tmp/ca.pem" "$tmp/privkey.pem" "$tmp/fullchain.pem" "$LAB/"
    rm -rf "$tmp"
  fi
  if [ ! -s "$LAB/dh.pem" ]; then
    openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out "$LAB/dh.pem.tmp" 2>/dev/null \
      || lab_die "openssl: cannot write ffdhe2048 DH parameters"
    chmod 0644 "$LAB/dh.pem.tmp"
    mv -f "$LAB/dh.pem.tmp" "$LAB/dh.pem"
  fi
  umask 022
}
