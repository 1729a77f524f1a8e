// The 403 page a signed-in staff member meets (ui_shared.refused): the staff pages' header is filled as on
// every staff page -- who is signed in, 退出登录, and the links to the pages this person may open -- by the
// one script that fills it (hurenStaff.whoami), so a person refused one page goes on to their own or signs out.
// "Back to your pages" leads to the first page the header shows this person (a clinician opens none of the
// auditors' pages: then no link, rv39h LOW), never to a page that would refuse them too.
window.hurenStaff.whoami(location.pathname + location.search).then(() => {
  const first = document.querySelector("header nav a:not([hidden])"), back = document.querySelector("#back");
  if (first && back) { back.href = first.getAttribute("href"); back.hidden = false; }
});
