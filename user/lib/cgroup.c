/* cgroup v2 helpers (cgroup.h). */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cgroup.h"

int cgroup2_mount(char *buf, size_t len)
{
	FILE *mounts = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int err = -ENOENT;

	if (!mounts)
		return -errno;
	while (err == -ENOENT && (m = getmntent(mounts))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		err = snprintf(buf, len, "%s", m->mnt_dir) < (int)len ? 0 : -ENAMETOOLONG;
	}
	endmntent(mounts);
	return err;
}

unsigned long long cgroup_id(const char *path)
{
	struct statfs fs;
	struct stat st;

	if (stat(path, &st) || statfs(path, &fs))
		return 0;
	if (!S_ISDIR(st.st_mode) || fs.f_type != CGROUP2_SUPER_MAGIC) {
		errno = EMEDIUMTYPE; /* "Wrong medium type": not on cgroup2 */
		return 0;
	}
	return st.st_ino;
}

int cgroup_enter(const char *path, pid_t pid)
{
	char file[4096];
	int fd, err = 0;

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%d\n", (int)pid) < 0)
		err = -errno;
	close(fd);
	return err;
}
