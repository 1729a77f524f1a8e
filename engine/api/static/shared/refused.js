// The 403 page a signed-in staff member meets (ui_shared.refused): the staff pages' header is filled as on
// every staff page -- who is signed in, 退出登录, and the links to the pages this person may open -- by the
// one script that fills it (hurenStaff.whoami), so a person refused one page goes on to their own or signs out.
window.hurenStaff.whoami(location.pathname + location.search);
