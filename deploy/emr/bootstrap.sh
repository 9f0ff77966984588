#!/usr/bin/env bash
# EMR bootstrap action: installs and starts a waystream host on each core node.
#
# deploy/waystream.yaml runs it on every node of the cluster as
#
#   bootstrap.sh --region R --stream S --lease-table T --delivery firehose|direct \
#                --delivery-stream D --opensearch-endpoint https://E \
#                --dead-letter-bucket B --artifacts s3://bucket/prefix/ --log-group G
#
# ("none" marks a name the chosen delivery mode does not use). On the primary ("master") node it
# does nothing. On a core node it
#   1. downloads <artifacts>waystream-host.tar.gz (and checks it against
#      waystream-host.tar.gz.sha256 when that file exists) and unpacks it to /opt/waystream,
#   2. renders /etc/waystream/pipeline.toml from the tarball's deploy/host/pipeline-aws.toml
#      (firehose) or pipeline-aws-direct.toml (direct), replacing the @PLACEHOLDER@ tokens,
#   3. installs the tarball's deploy/systemd/waystream.service, with AWS_REGION in a drop-in,
#      and a system user "waystream",
#   4. ships /var/log/waystream/waystream.log (the service's stdout and stderr) to the CloudWatch
#      log group with the CloudWatch agent (the amazon-cloudwatch-agent package of Amazon Linux
#      2023, which EMR 7 runs on; one log stream per instance id), rotated by logrotate,
#   5. systemctl enable --now waystream.
#
# Bootstrap actions run as the hadoop user, which has passwordless sudo: the script re-runs
# itself under sudo. It is idempotent (running it again replaces the install).
#
# For tests only: WAYSTREAM_ROOT (default empty) prefixes every path the script writes or reads
# on the node, and WAYSTREAM_INSTANCE_INFO overrides /mnt/var/lib/info/instance.json; with
# WAYSTREAM_ROOT set the script does not re-run under sudo.

set -euo pipefail

readonly ROOT="${WAYSTREAM_ROOT:-}"
readonly INSTANCE_INFO="${WAYSTREAM_INSTANCE_INFO:-/mnt/var/lib/info/instance.json}"
readonly PREFIX="$ROOT/opt/waystream"
readonly CONFIG_DIR="$ROOT/etc/waystream"
readonly UNIT_DIR="$ROOT/etc/systemd/system"
readonly LOG_DIR="$ROOT/var/log/waystream"
readonly CWAGENT_CONFIG="$ROOT/opt/aws/amazon-cloudwatch-agent/etc/waystream.json"
readonly LOGROTATE_CONFIG="$ROOT/etc/logrotate.d/waystream"

log() { printf 'waystream-bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat <<'EOF'
usage: bootstrap.sh --region R --stream S --lease-table T --delivery firehose|direct
                    [--delivery-stream D] [--opensearch-endpoint https://E]
                    --dead-letter-bucket B --artifacts s3://bucket/prefix/ --log-group G
EOF
}

region="" stream="" lease_table="" delivery="" delivery_stream="" opensearch_endpoint=""
dead_letter_bucket="" artifacts="" log_group=""

parse_args() {
    while (($# > 0)); do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --region | --stream | --lease-table | --delivery | --delivery-stream | \
                --opensearch-endpoint | --dead-letter-bucket | --artifacts | --log-group)
                (($# >= 2)) || die "$1 needs a value"
                case "$1" in
                    --region) region=$2 ;;
                    --stream) stream=$2 ;;
                    --lease-table) lease_table=$2 ;;
                    --delivery) delivery=$2 ;;
                    --delivery-stream) delivery_stream=$2 ;;
                    --opensearch-endpoint) opensearch_endpoint=$2 ;;
                    --dead-letter-bucket) dead_letter_bucket=$2 ;;
                    --artifacts) artifacts=$2 ;;
                    --log-group) log_group=$2 ;;
                esac
                shift 2
                ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
}

# Every value ends up inside a TOML string or a JSON string: allow only the characters AWS
# names and URLs of this stack use, so no quoting is needed anywhere.
check_value() {
    local name=$1 value=$2
    [[ -n $value ]] || die "--$name is required"
    [[ $value =~ ^[A-Za-z0-9._:/-]+$ ]] || die "--$name has unexpected characters: $value"
}

validate_args() {
    check_value region "$region"
    check_value stream "$stream"
    check_value lease-table "$lease_table"
    check_value dead-letter-bucket "$dead_letter_bucket"
    check_value artifacts "$artifacts"
    check_value log-group "$log_group"
    case "$delivery" in
        firehose) check_value delivery-stream "$delivery_stream"
                  [[ $delivery_stream != none ]] || die "--delivery firehose needs --delivery-stream" ;;
        direct) check_value opensearch-endpoint "$opensearch_endpoint"
                [[ $opensearch_endpoint == https://* ]] || die "--opensearch-endpoint must be https://..." ;;
        *) die "--delivery must be firehose or direct, not '$delivery'" ;;
    esac
    [[ $artifacts == s3://* ]] || die "--artifacts must be an s3:// URI"
}

is_primary_node() {
    [[ -r $INSTANCE_INFO ]] || die "cannot read $INSTANCE_INFO (not an EMR node?)"
    grep -Eq '"isMaster"[[:space:]]*:[[:space:]]*true' "$INSTANCE_INFO"
}

# Downloads and unpacks the host tarball into $PREFIX (replacing a previous install).
install_host() {
    local work=$1 base=${artifacts%/}
    log "downloading $base/waystream-host.tar.gz"
    aws s3 cp --only-show-errors --region "$region" "$base/waystream-host.tar.gz" "$work/"
    if aws s3 cp --only-show-errors --region "$region" \
        "$base/waystream-host.tar.gz.sha256" "$work/" 2>/dev/null; then
        log "checking sha256"
        (cd "$work" && sha256sum --check --strict waystream-host.tar.gz.sha256) \
            || die "waystream-host.tar.gz does not match its .sha256"
    else
        log "no waystream-host.tar.gz.sha256 next to the tarball: not checked"
    fi
    rm -rf "$PREFIX.new"
    mkdir -p "$PREFIX.new"
    tar -xzf "$work/waystream-host.tar.gz" -C "$PREFIX.new" --no-same-owner
    [[ -x $PREFIX.new/bin/waystream ]] || die "the tarball has no executable bin/waystream"
    rm -rf "$PREFIX.old"
    if [[ -e $PREFIX ]]; then mv "$PREFIX" "$PREFIX.old"; fi
    mv "$PREFIX.new" "$PREFIX"
    rm -rf "$PREFIX.old"
}

# Replaces @TOKEN@ placeholders in $1, writes $2; fails on any token left over.
render_config() {
    local template=$1 target=$2 text
    [[ -f $template ]] || die "the tarball has no ${template#"$PREFIX"/}"
    text=$(<"$template")
    # Quoted replacements: with bash 5.2's patsub_replacement an unquoted & would be special.
    text=${text//@STREAM@/"$stream"}
    text=${text//@LEASE_TABLE@/"$lease_table"}
    text=${text//@DELIVERY_STREAM@/"$delivery_stream"}
    text=${text//@OPENSEARCH_ENDPOINT@/"$opensearch_endpoint"}
    text=${text//@DEAD_LETTER_BUCKET@/"$dead_letter_bucket"}
    text=${text//@REGION@/"$region"}
    text=${text//@PREFIX@/"/opt/waystream"}
    if [[ $text =~ @[A-Z_]+@ ]]; then
        die "placeholder ${BASH_REMATCH[0]} left in $template"
    fi
    mkdir -p "$(dirname "$target")"
    printf '%s\n' "$text" >"$target.tmp"
    chmod 0644 "$target.tmp"
    mv "$target.tmp" "$target"
}

install_service() {
    if ! id waystream >/dev/null 2>&1; then
        log "creating system user waystream"
        useradd --system --user-group --home-dir /var/lib/waystream --no-create-home \
            --shell /sbin/nologin waystream
    fi
    mkdir -p "$UNIT_DIR/waystream.service.d" "$LOG_DIR"
    chmod 0755 "$LOG_DIR"
    install -m 0644 "$PREFIX/deploy/systemd/waystream.service" "$UNIT_DIR/waystream.service"
    cat >"$UNIT_DIR/waystream.service.d/10-aws.conf" <<EOF
# Written by the waystream EMR bootstrap action.
[Service]
Environment=AWS_REGION=$region
EOF
    chmod 0644 "$UNIT_DIR/waystream.service.d/10-aws.conf"
}

# Log shipping is not worth failing the cluster for: any error here is logged and skipped.
install_log_shipping() {
    mkdir -p "$(dirname "$LOGROTATE_CONFIG")"
    cat >"$LOGROTATE_CONFIG" <<'EOF'
# The service appends to this file (StandardOutput=append:); copytruncate keeps its handle valid.
/var/log/waystream/waystream.log {
    daily
    rotate 7
    maxsize 200M
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}
EOF
    local ctl=$ROOT/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
    if [[ ! -x $ctl ]]; then
        log "installing amazon-cloudwatch-agent"
        if ! dnf install -y -q amazon-cloudwatch-agent; then
            log "warning: could not install amazon-cloudwatch-agent: host logs stay on the node"
            return 0
        fi
    fi
    mkdir -p "$(dirname "$CWAGENT_CONFIG")"
    cat >"$CWAGENT_CONFIG" <<EOF
{
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {
            "file_path": "/var/log/waystream/waystream.log",
            "log_group_name": "$log_group",
            "log_stream_name": "{instance_id}",
            "timezone": "UTC"
          }
        ]
      }
    }
  }
}
EOF
    # append-config: EMR may run its own agent configuration; this adds ours beside it.
    if ! "$ctl" -a append-config -m ec2 -c "file:$CWAGENT_CONFIG" -s; then
        log "warning: the CloudWatch agent did not start: host logs stay on the node"
    fi
}

main() {
    parse_args "$@"
    validate_args
    if [[ -z $ROOT && $EUID -ne 0 ]]; then
        exec sudo --preserve-env=PATH bash "$0" "$@"
    fi
    if is_primary_node; then
        log "primary node: no waystream host here"
        exit 0
    fi

    local work
    work=$(mktemp -d)
    # shellcheck disable=SC2064  # expand $work now: it is local to main
    trap "rm -rf '$work'" EXIT

    install_host "$work"
    local template=$PREFIX/deploy/host/pipeline-aws.toml
    if [[ $delivery == direct ]]; then
        template=$PREFIX/deploy/host/pipeline-aws-direct.toml
    fi
    render_config "$template" "$CONFIG_DIR/pipeline.toml"
    log "wrote $CONFIG_DIR/pipeline.toml ($delivery)"
    install_service
    install_log_shipping || log "warning: log shipping not set up: host logs stay on the node"
    systemctl daemon-reload
    systemctl enable --now waystream.service
    log "waystream.service enabled and started"
}

main "$@"
