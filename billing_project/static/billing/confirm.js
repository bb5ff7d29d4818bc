// Forms that ask before they submit: <form data-confirm="Question?">. A script file rather
// than an inline onsubmit handler, so the Content-Security-Policy needs no 'unsafe-inline'.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
