/* loglevel.h - secmsgd's log levels: what log.h filters on and what
 * [server] log_level in config.h names. */
#ifndef SECMSGD_LOGLEVEL_H
#define SECMSGD_LOGLEVEL_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#endif
