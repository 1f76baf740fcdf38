/*  zc_registry_scripts — the registry's Lua scripts (private to the
    registry actor). Each change to the registry is one script, so a
    record, its set entry, its lease and its announcement never disagree;
    zc_registry_scripts.c says what each takes and answers.
*/
#ifndef ZC_REGISTRY_SCRIPTS_H_INCLUDED
#define ZC_REGISTRY_SCRIPTS_H_INCLUDED

enum {
    ZC_SCRIPT_PRESENCE,    //  register, refresh and repair this node's own presence
    ZC_SCRIPT_UPDATE,      //  one field of this node's record changed
    ZC_SCRIPT_REMOVE,      //  this node leaves
    ZC_SCRIPT_SUSPECT,     //  this node cannot reach a peer: a vote for its removal
    ZC_SCRIPT_REAP,        //  remove the nodes whose lease expired
    ZC_SCRIPT_ELECT,       //  take or renew the leader lease
    ZC_SCRIPT_LEADER_HEAL, //  replace a leader or epoch key that is not what ELECT reads
    ZC_SCRIPT_COUNT
};

//  The scripts' sources, indexed by the enum above.
extern const char *zc_registry_script_sources[ZC_SCRIPT_COUNT];

#endif
