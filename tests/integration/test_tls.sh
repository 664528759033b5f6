#!/usr/bin/env bash
# TLS with a private CA (issue 16). The test makes a CA and a server certificate for IP 127.0.0.1 signed by it
# (openssl), and puts stunnel on 127.0.0.1 in front of RGW A, so the target is https://127.0.0.1:PORT:
#   1. without the CA the run is refused by TLS: the error names the certificate problem and the option to
#      use (exit 1, nothing copied);
#   2. --target-ca-bundle CA.pem: the run works and the target holds the objects (awscli over plain http);
#   3. AWS_CA_BUNDLE=CA.pem works, and so does ca_bundle in the target profile of AWS_CONFIG_FILE;
#   4. a bundle with another CA fails naming the bundle; an unreadable bundle is a configuration error (2);
#   5. --insecure works and says on stderr that verification is off.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init stunnel4=stunnel4 openssl curl

d=$T_TMP/pki
mkdir -p "$d"
mkca() { # NAME: a self-signed CA NAME.key/NAME.pem
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=replicate test $1" -keyout "$d/$1.key" \
    -out "$d/$1.pem" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1
}
mkca ca || die "openssl: cannot make the CA"
mkca other || die "openssl: cannot make the second CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" \
  >/dev/null 2>&1 || die "openssl: cannot make the server key"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
  -extfile "$d/ext.cnf" -out "$d/server.pem" >/dev/null 2>&1 || die "openssl: cannot sign the server certificate"
openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null || die "the server certificate does not verify"

# stunnel: TLS on 127.0.0.1:PORT -> RGW A (plain http)
port=$(free_port)
up=${RGW_A_ENDPOINT#http://}
cat >"$d/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 5
output = $d/stunnel.log
[rgw]
accept = 127.0.0.1:$port
connect = $up
cert = $d/server.pem
key = $d/server.key
EOF
stunnel4 "$d/stunnel.conf" >"$d/stunnel.out" 2>&1 &
lib_kill_at_exit $!
for _ in $(seq 50); do
  curl -s -o /dev/null --cacert "$d/ca.pem" "https://127.0.0.1:$port/" && break
  sleep 0.1
done
curl -s -o /dev/null --cacert "$d/ca.pem" "https://127.0.0.1:$port/" ||
  die "stunnel does not answer on 127.0.0.1:$port: $(tail -n 5 "$d/stunnel.log" "$d/stunnel.out" 2>/dev/null)"
tls=https://127.0.0.1:$port
say "TLS proxy: $tls -> $RGW_A_ENDPOINT (certificate for IP:127.0.0.1 signed by a test CA)"

src=$(bucket src)
mkbucket a "$src"
s3tool_on a fill "$src" t/ 12 100 3000 9 || die "s3tool fill"
count() { aws_on a s3api list-objects-v2 --bucket "$1" --prefix t/ --query 'length(Contents || `[]`)' --output text 2>/dev/null; }
# the source over plain http, the target through the TLS proxy (another endpoint: streamed copies)
TLS_RUN=(--source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$tls" --profile a --settle 0 --retries 2)

# ---- 1. without the CA
d1=$(bucket noca)
mkbucket a "$d1" --versioned
rep noca "${TLS_RUN[@]}" "s3://$src" "s3://$d1"
expect_rc noca 1 "without the CA the run fails"
check "the error names the certificate problem" grep -q 'TLS certificate not trusted (SSL certificate problem' "$T_TMP/noca.err"
check "the error names the option to use (--target-ca-bundle)" grep -q -- '--target-ca-bundle' "$T_TMP/noca.err"
say "    says: $(head -n 1 "$T_TMP/noca.err")"
check "nothing was copied ($(count "$d1") objects)" test "$(count "$d1")" = 0

# ---- 2. --target-ca-bundle
d2=$(bucket opt)
mkbucket a "$d2" --versioned
rep opt "${TLS_RUN[@]}" --target-ca-bundle "$d/ca.pem" "s3://$src" "s3://$d2"
expect_rc opt 0 "with --target-ca-bundle the run works"
check "the target holds the 12 objects ($(count "$d2"))" test "$(count "$d2")" = 12
check "requests went through the TLS proxy" grep -q 'accepted connection from 127.0.0.1' "$d/stunnel.log"

# ---- 3. AWS_CA_BUNDLE, and ca_bundle in the profile
d3=$(bucket env)
mkbucket a "$d3" --versioned
AWS_CA_BUNDLE=$d/ca.pem rep env "${TLS_RUN[@]}" "s3://$src" "s3://$d3"
expect_rc env 0 "with AWS_CA_BUNDLE the run works"
check "the target holds the 12 objects ($(count "$d3"))" test "$(count "$d3")" = 12
cat >>"$AWS_CONFIG_FILE" <<EOF
[profile tls]
ca_bundle = $d/ca.pem
EOF
cat >>"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[tls]
aws_access_key_id = $RGW_A_ACCESS_KEY
aws_secret_access_key = $RGW_A_SECRET_KEY
EOF
d4=$(bucket prof)
mkbucket a "$d4" --versioned
rep prof --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$tls" --source-profile a --target-profile tls \
  --settle 0 --retries 2 "s3://$src" "s3://$d4"
expect_rc prof 0 "with ca_bundle in the target's profile the run works"
check "the target holds the 12 objects ($(count "$d4"))" test "$(count "$d4")" = 12

# ---- 4. the wrong CA; a bundle that cannot be read
rep wrong "${TLS_RUN[@]}" --target-ca-bundle "$d/other.pem" "s3://$src" "s3://$d1"
expect_rc wrong 1 "a bundle with another CA fails"
check "the error names the bundle and where it came from" grep -q "no CA in $d/other.pem (from --target-ca-bundle)" "$T_TMP/wrong.err"
rep missing "${TLS_RUN[@]}" --target-ca-bundle "$d/no-such.pem" "s3://$src" "s3://$d1"
expect_rc missing 2 "an unreadable CA bundle is a configuration error"
check "it names the file and the option" grep -q "cannot read the CA bundle $d/no-such.pem (from --target-ca-bundle)" "$T_TMP/missing.err"

# ---- 5. --insecure
d5=$(bucket insecure)
mkbucket a "$d5" --versioned
rep insecure "${TLS_RUN[@]}" --insecure "s3://$src" "s3://$d5"
expect_rc insecure 0 "with --insecure the run works"
check "the target holds the 12 objects ($(count "$d5"))" test "$(count "$d5")" = 12
check "stderr says that verification is off" grep -q 'TLS certificate verification is off' "$T_TMP/insecure.err"
finish
