/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Resolution beneath a directory: links and ".." refused, with openat2
 * and with the component walk; the private directory check. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "safefs.h"

static char root[] = "/tmp/test-safefs.XXXXXX";

static int setup(void **state)
{
	char p[256];

	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/d", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d/f", root);
	close(open(p, O_WRONLY | O_CREAT, 0644));
	snprintf(p, sizeof(p), "%s/link", root);
	assert_int_equal(symlink("d", p), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd);
}

static void resolve(int (*open_beneath)(int, const char *, int, int *))
{
	int dir = open(root, O_RDONLY | O_DIRECTORY), fd = -1;

	assert_true(dir >= 0);
	assert_int_equal(open_beneath(dir, "d/f", O_RDONLY, &fd), 0);
	close(fd);
	assert_int_equal(open_beneath(dir, "d", O_RDONLY | O_DIRECTORY, &fd), 0);
	close(fd);
	assert_int_equal(open_beneath(dir, "", O_RDONLY | O_DIRECTORY, &fd), 0);
	close(fd);
	assert_int_equal(open_beneath(dir, "link/f", O_RDONLY, &fd), -ELOOP);
	assert_int_equal(open_beneath(dir, "link", O_RDONLY | O_DIRECTORY, &fd), -ENOTDIR); /* O_NOFOLLOW */
	assert_int_equal(open_beneath(dir, "d/../d/f", O_RDONLY, &fd), -EXDEV);
	assert_int_equal(open_beneath(dir, "/etc", O_RDONLY, &fd), -EXDEV);
	close(dir);
}

static void test_openat2(void **state)
{
	resolve(ph_open_beneath);
}

static void test_walk(void **state)
{
	resolve(ph_open_beneath_walk);
}

static void test_parent(void **state)
{
	char p[256];
	const char *name;
	int dir = -1, fd = -1;
	struct stat st;

	snprintf(p, sizeof(p), "%s/d/f", root);
	assert_int_equal(ph_open_parent(root, p, &dir, &name), 0);
	assert_string_equal(name, "f");
	assert_int_equal(fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(ph_check_at(dir, name, 0, st.st_ino, 0, -1, NULL), 0);
	assert_int_equal(ph_check_at(dir, name, 0, st.st_ino + 1, 0, -1, NULL), -ESTALE);
	assert_int_equal(ph_check_at(dir, name, st.st_dev + 1, st.st_ino, 0, -1, NULL), -ESTALE);
	assert_int_equal(ph_check_at(dir, "nope", 0, st.st_ino, 0, -1, NULL), -ENOENT);
	assert_int_equal(ph_open_at_checked(dir, name, O_RDONLY, 0, st.st_ino, 0, &fd), 0);
	close(fd);
	close(dir);
	snprintf(p, sizeof(p), "%s/link/f", root);
	assert_int_equal(ph_open_parent(root, p, &dir, &name), -ENOTDIR);
	assert_int_equal(ph_open_parent("/nonexistent-mount", p, &dir, &name), -EXDEV);
}

static void test_private_dir(void **state)
{
	int dir = open(root, O_RDONLY | O_DIRECTORY), fd = -1;
	char *why = NULL, p[256];

	assert_int_equal(ph_private_dir(dir, "mine", "mine", &fd, &why), 0);
	close(fd);
	assert_int_equal(ph_private_dir(dir, "mine", "mine", &fd, &why), 0); /* again: ours */
	close(fd);
	snprintf(p, sizeof(p), "%s/mine", root);
	assert_int_equal(chmod(p, 0755), 0);
	assert_int_equal(ph_private_dir(dir, "mine", "mine", &fd, &why), -EPERM);
	assert_non_null(strstr(why, "mode 0755"));
	free(why);
	why = NULL;
	assert_int_equal(ph_private_dir(dir, "link", "link", &fd, &why), -EPERM);
	assert_non_null(strstr(why, "not a directory"));
	free(why);
	close(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openat2),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_parent),
		cmocka_unit_test(test_private_dir),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
