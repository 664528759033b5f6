# bash completion for replicate(1); installed as share/bash-completion/completions/replicate.
# Options come from `replicate --help` when replicate is on PATH (so they follow the installed version),
# else from the list below. Needs nothing but bash (not the bash-completion package's helpers).
# scripts/check-docs.sh tests it and fails when an option of --help is missing from the list.

_replicate_static_options="
--source-profile --target-profile --source-endpoint --target-endpoint --source-region --target-region
--profile --endpoint --region --path-style --virtual-hosted --insecure
--source-ca-bundle --target-ca-bundle --ca-bundle
--jobs --settle --max-passes --part-size --multipart-threshold --copy-threshold --max-memory --timeout
--retries --list-ranges --start-after --end-before --shard --shards --run-id --no-tags --skip-archived --storage-class --dry-run
--allow-unversioned --enable-versioning --init-target --source-is-replica --lease --retain --retain-mode
--maintenance-file --maintenance-on --maintenance-off --grace --maintenance-max
--verify --deep --sample --status --max-age --max-drill-age --metrics-file
--restore --restore-drill --run --at --only-missing --overwrite
--json --quiet --verbose --no-progress --log-format --state-dir --notify-cmd --notify-url --help --version
"

# The long options: from --help of the replicate on PATH, else the static list.
_replicate_options()
{
    local help rest word out=""
    if type -P replicate >/dev/null 2>&1 && help=$(replicate --help 2>/dev/null) && [[ $help == *--* ]]; then
        rest=$help
        while [[ $rest =~ (^|[^a-zA-Z0-9-])(--[a-z][a-z0-9-]*) ]]; do
            word=${BASH_REMATCH[2]}
            rest=${rest#*"${BASH_REMATCH[0]}"}
            [[ " $out " == *" $word "* ]] || out+=" $word"
        done
        printf '%s\n' "$out"
    else
        printf '%s\n' "$_replicate_static_options"
    fi
}

# Profile names from the AWS config and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE,
# a leading ~/ expanded, as replicate reads them): "[profile NAME]" and "[default]" in the config file,
# "[NAME]" in the credentials file.
_replicate_profiles()
{
    local conf=${AWS_CONFIG_FILE:-~/.aws/config} cred=${AWS_SHARED_CREDENTIALS_FILE:-~/.aws/credentials}
    local file line name is_conf
    local re='^[[:space:]]*\[[[:space:]]*([^]]*[^][:space:]])[[:space:]]*\]'
    for file in "$conf" "$cred"; do
        is_conf=0
        [[ $file == "$conf" ]] && is_conf=1
        # shellcheck disable=SC2088 # a literal ~/ in the variable, expanded like replicate does
        [[ $file == "~/"* ]] && file=$HOME/${file#"~/"}
        [[ -r $file ]] || continue
        while IFS= read -r line || [[ -n $line ]]; do
            [[ $line =~ $re ]] || continue
            name=${BASH_REMATCH[1]}
            if ((is_conf)); then
                if [[ $name =~ ^profile[[:space:]]+(.+)$ ]]; then
                    name=${BASH_REMATCH[1]}
                elif [[ $name != default ]]; then
                    continue # sso-session, services, ... sections are not profiles
                fi
            fi
            printf '%s\n' "$name"
        done <"$file"
    done
}

_replicate()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    # --option=value: bash splits at '=' (COMP_WORDBREAKS), giving "--option" "=" "value"
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi
    COMPREPLY=()
    case $prev in
        --profile | --source-profile | --target-profile)
            mapfile -t COMPREPLY < <(compgen -W "$(_replicate_profiles | sort -u)" -- "$cur")
            return
            ;;
        --state-dir)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            return
            ;;
        --maintenance-file | --metrics-file | --source-ca-bundle | --target-ca-bundle | --ca-bundle)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return
            ;;
        --notify-cmd | --maintenance-on | --maintenance-off)
            mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            return
            ;;
        # values of options
        --retain-mode)
            mapfile -t COMPREPLY < <(compgen -W $'governance\ncompliance' -- "$cur")
            return
            ;;
        --storage-class)
            mapfile -t COMPREPLY < <(compgen -W $'STANDARD\nSTANDARD_IA\nONEZONE_IA\nINTELLIGENT_TIERING\nGLACIER_IR\nGLACIER\nDEEP_ARCHIVE\nREDUCED_REDUNDANCY' -- "$cur")
            return
            ;;
        --log-format)
            mapfile -t COMPREPLY < <(compgen -W $'human\njson' -- "$cur")
            return
            ;;
        # options whose value cannot be guessed: offer nothing rather than options or URLs
        --source-endpoint | --target-endpoint | --endpoint | --endpoint-url | --source-region | \
            --target-region | --region | -j | --jobs | --settle | --max-passes | --part-size | \
            --multipart-threshold | --copy-threshold | --max-memory | --timeout | --retries | --list-ranges | \
            --start-after | --end-before | --shard | --shards | --run-id | --grace | --maintenance-max | --sample | --max-age | \
            --max-drill-age | --notify-url | --run | --at | --lease)
            return
            ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_replicate_options)" -- "$cur")
    elif [[ -z $cur || s3:// == "$cur"* ]]; then
        compopt -o nospace 2>/dev/null
        COMPREPLY=(s3://)
    fi
}

complete -F _replicate replicate
