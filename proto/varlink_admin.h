/* varlink_admin.h - the names and bounds of io.secmsg.Admin (PROTOCOL.md
 * §9) that secmsgd (daemon/control.c) and secmsgctl (ctl/) both use, so
 * that a method, an error or a limit cannot be spelled two ways.
 */
#ifndef SECMSG_VARLINK_ADMIN_H
#define SECMSG_VARLINK_ADMIN_H

#define VL_ADMIN			"io.secmsg.Admin"
#define VL_ADMIN_LIST_USERS		VL_ADMIN ".ListUsers"
#define VL_ADMIN_LIST_CHATS		VL_ADMIN ".ListChats"
#define VL_ADMIN_KICK			VL_ADMIN ".Kick"
#define VL_ADMIN_RELOAD			VL_ADMIN ".Reload"
#define VL_ADMIN_STATS			VL_ADMIN ".Stats"
#define VL_ADMIN_LIST_QUEUES		VL_ADMIN ".ListQueues"
#define VL_ADMIN_PURGE			VL_ADMIN ".Purge"
#define VL_ADMIN_NO_SUCH_USER		VL_ADMIN ".NoSuchUser"
#define VL_ADMIN_PERMISSION_DENIED	VL_ADMIN ".PermissionDenied"
/* Not in the interface description: the daemon's own failure (reason). */
#define VL_ADMIN_FAILED			VL_ADMIN ".Failed"

#define VL_SERVICE			"org.varlink.service"
#define VL_SERVICE_INVALID_PARAMETER	VL_SERVICE ".InvalidParameter"
#define VL_SERVICE_PERMISSION_DENIED	VL_SERVICE ".PermissionDenied"
#define VL_SERVICE_INTERFACE_NOT_FOUND	VL_SERVICE ".InterfaceNotFound"
#define VL_SERVICE_METHOD_NOT_FOUND	VL_SERVICE ".MethodNotFound"

/* One request, without its NUL: the daemon closes a longer one. */
#define VL_ADMIN_REQUEST_MAX		65536
/* Kick's reason, bytes of UTF-8 (the text BYE 1 carries). */
#define VL_ADMIN_REASON_MAX		1023

#endif
