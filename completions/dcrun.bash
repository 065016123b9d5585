# bash completion for dcrun(1)                             -*- shell-script -*-
#
# Commands and options come from the dcrun being completed: `dcrun --help`
# and `dcrun COMMAND --help`, read once per shell and command, so that the
# completion follows the binary (a new option needs no edit here).  Values:
#   -H, --hosts         hosts of the hostfile (-f FILE on the line, else
#                       $DCRUN_HOSTFILE, expanded by `dcrun hosts`) and the
#                       Host lines of ~/.ssh/config (or --ssh-config FILE)
#                       without wildcards; after a comma, the next host
#   A|B|C metavars      those words (--device cpu|cuda|auto, --map-by ...)
#   -L, --launcher      local ssh mpi slurm auto
#   FILE, *.npy, ...    files (--model, --input, --output, --target, -f ...)
#   DIR, D              folders
#   after --            a command and its arguments (exec, worker)
# Installed as share/bash-completion/completions/dcrun; it works with or
# without the bash-completion package (`source` this file).

# per "BIN|COMMAND" ("BIN|" for dcrun itself): its options, its
# sub-commands (dcrun's commands, bench's gemm comm launch); per
# "BIN|COMMAND|OPTION": the option's metavar ("" for a flag)
declare -gA _dcrun_cache_opts _dcrun_cache_arg _dcrun_cache_sub

# _dcrun_run BIN ARGS...: BIN's output, bounded in time, no stdin, no errors
_dcrun_run()
{
    if type -P timeout >/dev/null; then
        timeout 5 "$@" </dev/null 2>/dev/null
    else
        "$@" </dev/null 2>/dev/null
    fi
}

# _dcrun_load BIN CMD: fill the caches for CMD ("" = the global help)
_dcrun_load()
{
    local bin=$1 cmd=$2 key="$1|$2" line opt short meta in_cmds=0 subs=""
    local opts=""
    [[ -n ${_dcrun_cache_opts[$key]+set} ]] && return 0
    local re='^ +(-([A-Za-z0-9]), )?--([A-Za-z0-9][A-Za-z0-9-]*)( ([^ ]+))?( {2,}|$)'
    local help
    if [[ -n $cmd ]]; then
        help=$(_dcrun_run "$bin" "$cmd" --help)
    else
        help=$(_dcrun_run "$bin" --help)
    fi
    while IFS= read -r line; do
        if [[ $line =~ $re ]]; then
            short=${BASH_REMATCH[2]}
            opt=--${BASH_REMATCH[3]}
            meta=${BASH_REMATCH[5]}
            opts+=" $opt"
            _dcrun_cache_arg["$key|$opt"]=$meta
            if [[ -n $short ]]; then
                opts+=" -$short"
                _dcrun_cache_arg["$key|-$short"]=$meta
            fi
            continue
        fi
        if [[ -z $cmd ]]; then
            # "Commands:" then "  NAME  what it does" up to a blank line;
            # the internal ones (worker, serve) are left out
            if [[ $line == Commands:* ]]; then
                in_cmds=1
            elif [[ -z $line ]]; then
                in_cmds=0
            elif ((in_cmds)) && [[ $line =~ ^\ +([a-z][a-z0-9-]*)\ +(.*) ]]; then
                [[ ${BASH_REMATCH[2]} == internal:* ]] ||
                    subs+=" ${BASH_REMATCH[1]}"
            fi
        elif [[ $line =~ ^(Usage:)?\ +dcrun\ +$cmd\ +([a-z][a-z0-9-]*) ]]; then
            # "dcrun bench gemm ...": sub-commands
            subs+=" ${BASH_REMATCH[2]}"
        fi
    done <<<"$help"
    _dcrun_cache_opts[$key]=$opts
    _dcrun_cache_sub[$key]=$subs
}

# _dcrun_hosts BIN HOSTFILE SSHCONFIG: one host name a line
_dcrun_hosts()
{
    local bin=$1 hf=$2 cfg=$3 out=""
    hf=${hf/#\~/$HOME}
    cfg=${cfg/#\~/$HOME}
    if [[ -n $hf && -r $hf && ! -d $hf ]]; then
        # dcrun itself expands hostlist ranges (node[01-04]); the file as
        # text when it cannot
        out=$(_dcrun_run "$bin" hosts -f "$hf" |
            awk 'NR > 1 && $2 != "" { sub(/^.*@/, "", $2); print $2 }')
        if [[ -z $out ]]; then
            out=$(awk '{ sub(/#.*/, "") }
                NF && $1 !~ /[][]/ { h = $1; sub(/^.*@/, "", h);
                    sub(/:.*/, "", h); print h }' "$hf" 2>/dev/null)
        fi
        [[ -n $out ]] && printf '%s\n' "$out"
    fi
    if [[ -r $cfg && ! -d $cfg ]]; then
        awk '{ sub(/#.*/, "") }
            tolower($1) == "host" || tolower($1) ~ /^host=/ {
                sub(/^[Hh][Oo][Ss][Tt]=?/, "", $1)
                for (i = 1; i <= NF; i++)
                    if ($i != "" && $i !~ /[*?!]/) print $i
            }' "$cfg" 2>/dev/null
    fi
}

# _dcrun_value BIN KEY OPT META CUR HOSTFILE SSHCONFIG: fill COMPREPLY with
# the values of OPT (whose metavar is META)
_dcrun_value()
{
    local bin=$1 opt=$3 meta=$4 cur=$5 hf=$6 cfg=$7 IFS=$' \t\n'
    case $opt in
    -H | --hosts)
        local pre="" hosts
        [[ $cur == *,* ]] && pre=${cur%,*},
        hosts=$(_dcrun_hosts "$bin" "$hf" "$cfg" | sort -u)
        COMPREPLY=($(compgen -P "$pre" -W "$hosts" -- "${cur##*,}"))
        [[ ${#COMPREPLY[@]} -gt 0 ]] && type compopt &>/dev/null &&
            compopt -o nospace 2>/dev/null
        return
        ;;
    -L | --launcher)
        COMPREPLY=($(compgen -W 'local ssh mpi slurm auto' -- "$cur"))
        return
        ;;
    --activation)
        COMPREPLY=($(compgen -W 'relu gelu tanh none' -- "$cur"))
        return
        ;;
    -x | --export | -e | --env)
        type compopt &>/dev/null && compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -e -- "$cur"))
        return
        ;;
    esac
    case $meta in
    *'|'*)
        COMPREPLY=($(compgen -W "${meta//|/ }" -- "$cur"))
        ;;
    DIR | D)
        type compopt &>/dev/null && compopt -o filenames 2>/dev/null
        local IFS=$'\n' # names with spaces
        COMPREPLY=($(compgen -d -- "$cur"))
        ;;
    FILE* | *.* | PATH)
        type compopt &>/dev/null && compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        COMPREPLY=($(compgen -f -- "$cur"))
        ;;
    *)
        COMPREPLY=() # a number, a list of CPUs, ...: nothing to offer
        ;;
    esac
}

_dcrun()
{
    local cur prev words cword split
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        # --opt=value, split at "=" by COMP_WORDBREAKS
        if [[ $cur == = ]]; then
            cur=""
        elif [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
            prev=${COMP_WORDS[COMP_CWORD - 2]}
        fi
        if [[ $cur == --*=* ]]; then
            prev=${cur%%=*}
            cur=${cur#*=}
        fi
    fi

    local bin=${words[0]:-dcrun}
    bin=${bin/#\~/$HOME}
    type -P "$bin" >/dev/null || bin=dcrun
    type -P "$bin" >/dev/null || return 0
    local IFS=$' \t\n'

    _dcrun_load "$bin" ""
    local gkey="$bin|"

    # The command (the first word that is neither an option nor an option's
    # value), its sub-command, the hostfile and ssh config on the line, and
    # where "--" is.
    local i w v cmd="" sub="" hf=${DCRUN_HOSTFILE:-} cfg=~/.ssh/config
    local key=$gkey dashdash=0
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ $w == -- ]]; then
            dashdash=$i
            break
        fi
        if [[ $w == -* ]]; then
            if [[ $w == --*=* ]]; then
                v=${w#*=}
                w=${w%%=*}
            elif [[ -n ${_dcrun_cache_arg["$key|$w"]} ]]; then
                # the value is the next word ("--opt = value" when "=" is a
                # word of its own)
                [[ ${words[i + 1]} == = ]] && ((i++))
                v=${words[++i]}
            else
                continue
            fi
            case $w in
            -f | --hostfile) hf=$v ;;
            --ssh-config) cfg=$v ;;
            esac
            continue
        fi
        if [[ -z $cmd ]]; then
            cmd=$w
            _dcrun_load "$bin" "$cmd"
            key="$bin|$cmd"
        elif [[ -z $sub && -n ${_dcrun_cache_sub[$key]} ]]; then
            sub=$w
        fi
    done

    # after "--": a command line of its own
    if ((dashdash)); then
        if declare -F _command_offset >/dev/null; then
            _command_offset $((dashdash + 1))
        else
            COMPREPLY=($(compgen -c -- "$cur"))
        fi
        return 0
    fi

    # the value of an option
    if [[ $prev == -* && -n ${_dcrun_cache_arg["$key|$prev"]} ]]; then
        _dcrun_value "$bin" "$key" "$prev" "${_dcrun_cache_arg["$key|$prev"]}" \
            "$cur" "$hf" "$cfg"
        return 0
    fi

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_dcrun_cache_opts[$key]}" -- "$cur"))
    elif [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "${_dcrun_cache_sub[$gkey]}" -- "$cur"))
    elif [[ -z $sub && -n ${_dcrun_cache_sub[$key]} ]]; then
        COMPREPLY=($(compgen -W "${_dcrun_cache_sub[$key]}" -- "$cur"))
    else
        # an operand (dcrun report R.json): files
        type compopt &>/dev/null && compopt -o filenames 2>/dev/null
        local IFS=$'\n'
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
} &&
    complete -F _dcrun dcrun
